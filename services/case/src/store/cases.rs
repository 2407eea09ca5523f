//! Opening, reading, listing and changing cases.

use super::*;

/// Opening, reading, listing and changing cases.
#[async_trait::async_trait]
pub trait CaseFiles {
    /// Opens the case of a screening, or returns the one already opened for it
    /// (`false` then). Writes `case.opened` in the same transaction.
    async fn open_case(&self, context: &AuditContext, new: NewCase) -> HavenResult<(Case, bool)>;
    /// A case inside `scope`, or `None` (also when it exists outside the scope). A
    /// case found is audited as read.
    async fn get_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Case>>;
    /// Cases inside `scope` in opening order, after the cursor position. Each case
    /// returned is audited as read.
    async fn list_cases(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &CaseFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Case>>;
    /// Moves a case inside `scope` to `stage` if it is still at `expected_version`
    /// (`PreconditionFailed` otherwise) and the workflow allows the move (`Conflict`
    /// naming the current stage otherwise). Audited. `None` if not in scope.
    async fn change_stage(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        stage: CaseStage,
    ) -> HavenResult<Option<Case>>;
    /// Changes risk, flags or caseworkers at `expected_version`.
    async fn update_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        changes: CaseChanges,
    ) -> HavenResult<Option<Case>>;
    /// Seals a case inside `scope` (idempotent); `None` if not in scope.
    async fn seal_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        legal_basis: &str,
    ) -> HavenResult<Option<Case>>;
    /// The case's events, in order.
    async fn timeline(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<TimelineEntry>>>;
}

#[async_trait::async_trait]
impl CaseFiles for Cases {
    #[tracing::instrument(skip_all, fields(screening_id = %new.screening_id))]
    async fn open_case(&self, context: &AuditContext, new: NewCase) -> HavenResult<(Case, bool)> {
        if let Some(existing) = self.existing(context, new.screening_id).await? {
            return Ok((existing, false));
        }
        match self.insert(context, &new).await? {
            Some(case) => {
                tracing::info!(case_id = %case.id, "case opened");
                Ok((case, true))
            }
            // A concurrent retry won the race: return its case.
            None => self
                .existing(context, new.screening_id)
                .await?
                .map(|case| (case, false))
                .ok_or_else(|| {
                    HavenError::internal(
                        "a concurrent opening of the case committed, yet its case cannot be read",
                    )
                }),
        }
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn get_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row.filter(|row| scope.contains(row.organization_id)) else {
            return Ok(None);
        };
        let receipt = AuditWrite::append_audit(
            &mut tx,
            SERVICE,
            &context.entry("case.read", "case", row.id),
        )
        .await
        .map_err(db_error)?;
        let case = row.into_case(&self.crypto, Some(&receipt))?;
        tx.commit().await?;
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all)]
    async fn list_cases(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &CaseFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Case>> {
        let today = filter
            .today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date());
        let rows: Vec<CaseRow> = sql::query_as(LIST_CASES)
            .bind(after.unwrap_or(0))
            .bind(scope.organization())
            .bind(filter.status.map(CaseStatus::as_str))
            .bind(i64::from(limit))
            .bind(filter.include_sealed)
            .bind(filter.stage.map(CaseStage::as_str))
            .bind(filter.risk_level.map(RiskLevel::as_str))
            .bind(filter.caseworker.as_deref())
            .bind(filter.overdue_follow_up)
            .bind(today.to_string())
            .bind(filter.overdue_plan_action)
            .bind(filter.organization_id)
            .fetch_all(&self.database)
            .await?;
        let mut cases = Vec::with_capacity(rows.len());
        if !rows.is_empty() {
            let mut tx = self.database.begin_write().await?;
            for row in rows {
                let receipt = AuditWrite::append_audit(
                    &mut tx,
                    SERVICE,
                    &context.entry("case.read", "case", row.id),
                )
                .await
                .map_err(db_error)?;
                cases.push(row.into_case(&self.crypto, Some(&receipt))?);
            }
            tx.commit().await?;
        }
        Ok(cases)
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn change_stage(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        stage: CaseStage,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        if !case.stage.can_move_to(stage) {
            return Err(conflict(format!(
                "a case at stage `{}` cannot move to `{}`",
                case.stage.as_str(),
                stage.as_str()
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        // Monitoring is the follow-up period; any other open stage is active work.
        let status = if stage == CaseStage::Monitoring {
            CaseStatus::FollowUp
        } else {
            CaseStatus::Active
        };
        sql::query("UPDATE cases SET stage = $2, status = $3 WHERE id = $1")
            .bind(id)
            .bind(stage.as_str())
            .bind(status.as_str())
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({ "from": case.stage.as_str(), "to": stage.as_str(), "status": status.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.stage_changed", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn update_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        expected_version: i64,
        changes: CaseChanges,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, id).await? else {
            return Ok(None);
        };
        Self::bump(&mut tx, &case, expected_version).await?;
        let risk_level = changes.risk_level.or(case.risk_level);
        let flags = changes.flags.clone().unwrap_or_else(|| case.flags.clone());
        let caseworkers = changes
            .caseworkers
            .clone()
            .unwrap_or_else(|| case.caseworkers.clone());
        sql::query("UPDATE cases SET risk_level = $2, flags = $3, caseworkers = $4 WHERE id = $1")
            .bind(id)
            .bind(risk_level.map(RiskLevel::as_str))
            .bind(serde_json::to_string(&flags).map_err(HavenError::internal)?)
            .bind(serde_json::to_string(&caseworkers).map_err(HavenError::internal)?)
            .execute(&mut tx)
            .await?;
        if changes.caseworkers.is_some() {
            sql::query("DELETE FROM case_caseworkers WHERE case_id = $1")
                .bind(id)
                .execute(&mut tx)
                .await?;
            for subject in &caseworkers {
                sql::query("INSERT INTO case_caseworkers (case_id, subject) VALUES ($1, $2)")
                    .bind(id)
                    .bind(subject)
                    .execute(&mut tx)
                    .await?;
            }
        }
        // Risk and flags are categorical; who the caseworkers are stays out of events.
        let payload = serde_json::json!({
            "risk_level": risk_level.map(RiskLevel::as_str),
            "flags": flags,
            "caseworkers_assigned": caseworkers.len(),
        });
        let action = if changes.caseworkers.is_some() {
            "case.assign"
        } else {
            "case.update"
        };
        let receipt = Self::record(
            &mut tx,
            context,
            action,
            &case,
            Some(("case.updated", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %id))]
    async fn seal_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        legal_basis: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let row: Option<CaseRow> = sql::query_as(SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(case) = row
            .map(|row| row.into_case(&self.crypto, None))
            .transpose()?
        else {
            return Ok(None);
        };
        if !scope.contains(case.organization_id) {
            return Ok(None);
        }
        let key = self.text_key(&mut tx, id).await?;
        let basis = CaseText::SealBasis.seal(key.as_ref(), &TextRow::id(id), legal_basis)?;
        let sealed = sql::query(SEAL_CASE)
            .bind(id)
            .bind(basis)
            .execute(&mut tx)
            .await?;
        let event = (sealed == 1).then(|| ("case.sealed", serde_json::json!({ "case_id": id })));
        let receipt = Self::record(&mut tx, context, "case.seal", &case, event).await?;
        let case = self.reload(&mut tx, id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn timeline(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<TimelineEntry>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<(i64, String, String, OffsetDateTime)> = sql::query_as(
            "SELECT sequence, event_type, payload, occurred_at FROM outbox_events WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(case_id)
        .fetch_all(&mut tx)
        .await
        ?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        Ok(Some(
            rows.into_iter()
                .map(
                    |(sequence, event_type, details, occurred_at): (
                        i64,
                        String,
                        String,
                        OffsetDateTime,
                    )| {
                        // Each reader sees the fields their roles may receive.
                        let payload = serde_json::from_str(&details).unwrap_or_default();
                        let details =
                            payload_for_roles(&event_type, &payload, &context.principal.roles)
                                .to_string();
                        TimelineEntry {
                            sequence,
                            occurred_at,
                            event_type,
                            details,
                        }
                    },
                )
                .collect(),
        ))
    }
}
