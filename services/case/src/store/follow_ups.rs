//! Follow-ups of a case.

use super::*;

/// Follow-ups of a case.
#[async_trait::async_trait]
pub trait FollowUps {
    /// Schedules a follow-up.
    #[allow(clippy::too_many_arguments)]
    async fn schedule_follow_up(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: FollowUpKind,
        due_on: Date,
        assigned_to: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<FollowUp>>>;
    /// Records what came of a follow-up, once.
    #[allow(clippy::too_many_arguments)]
    async fn record_follow_up_outcome(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        outcome: FollowUpOutcome,
        done_at: OffsetDateTime,
    ) -> HavenResult<Option<FollowUp>>;
    /// Follow-ups in creation order after the cursor; `None` if a named case is not
    /// visible.
    async fn list_follow_ups(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &FollowUpFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Option<Vec<(i64, FollowUp)>>>;
}

#[async_trait::async_trait]
impl FollowUps for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    #[allow(clippy::too_many_arguments)]
    async fn schedule_follow_up(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: FollowUpKind,
        due_on: Date,
        assigned_to: &str,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<FollowUp>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let follow_up = Self::load_follow_up(&mut tx, case_id, replayed_id(&earlier)?)
                .await?
                .ok_or_else(|| corrupt("follow-up"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(follow_up)));
        }
        open_case_required(&case)?;
        sql::query("INSERT INTO follow_ups (id, case_id, kind, due_on, assigned_to, version) VALUES ($1, $2, $3, $4, $5, 1)")
            .bind(id)
            .bind(case_id)
            .bind(kind.as_str())
            .bind(due_on.to_string())
            .bind(assigned_to)
            .execute(&mut tx)
            .await
            ?;
        let payload = serde_json::json!({ "follow_up_id": id, "kind": kind.as_str(), "due_on": due_on.to_string() });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.follow_up_scheduled", payload)),
        )
        .await?;
        let follow_up = Self::load_follow_up(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("follow-up"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(follow_up)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, follow_up_id = %id))]
    async fn record_follow_up_outcome(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        outcome: FollowUpOutcome,
        done_at: OffsetDateTime,
    ) -> HavenResult<Option<FollowUp>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(follow_up) = Self::load_follow_up(&mut tx, case_id, id).await? else {
            return Ok(None);
        };
        if follow_up.version != expected_version {
            return Err(stale(follow_up.version));
        }
        if let Some(recorded) = follow_up.outcome {
            return Err(conflict(format!(
                "the follow-up's outcome is already recorded (`{}`)",
                recorded.as_str()
            )));
        }
        let updated = sql::query(
            "UPDATE follow_ups SET outcome = $3, done_at = $4, version = version + 1 WHERE case_id = $1 AND id = $2 AND version = $5",
        )
        .bind(case_id)
        .bind(id)
        .bind(outcome.as_str())
        .bind(done_at)
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if updated != 1 {
            return Err(stale(follow_up.version));
        }
        let payload = serde_json::json!({ "follow_up_id": id, "outcome": outcome.as_str() });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.follow_up_done", payload)),
        )
        .await?;
        let follow_up = Self::load_follow_up(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("follow-up"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(follow_up))
    }

    #[tracing::instrument(skip_all)]
    async fn list_follow_ups(
        &self,
        context: &AuditContext,
        scope: Scope,
        filter: &FollowUpFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Option<Vec<(i64, FollowUp)>>> {
        let mut tx = self.database.begin_write().await?;
        if let Some(case_id) = filter.case_id
            && self.load(&mut tx, context, scope, case_id).await?.is_none()
        {
            return Ok(None);
        }
        let rows: Vec<FollowUpRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_FOLLOW_UPS} WHERE f.seq > $1 AND ($2 IS NULL OR c.organization_id = $2) AND ($3 OR c.sealed = FALSE) \
             AND ($4 IS NULL OR f.case_id = $4) AND ($5 IS NULL OR f.assigned_to = $5) \
             AND ($6 = FALSE OR (f.outcome IS NULL AND f.due_on < $7)) ORDER BY f.seq LIMIT $8"
        )))
        .bind(after.unwrap_or(0))
        .bind(scope.organization())
        .bind(context.principal.can(Action::CaseReadSealed))
        .bind(filter.case_id)
        .bind(filter.assigned_to.as_deref())
        .bind(filter.overdue_only)
        .bind(filter.today.to_string())
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await
        ?;
        let follow_ups = rows
            .into_iter()
            .map(<(i64, FollowUp)>::try_from)
            .collect::<HavenResult<Vec<_>>>()?;
        let mut audited = std::collections::BTreeSet::new();
        for (_, follow_up) in &follow_ups {
            if audited.insert(follow_up.case_id) {
                AuditWrite::append_audit(
                    &mut tx,
                    SERVICE,
                    &context.entry("case.read", "case", follow_up.case_id),
                )
                .await
                .map_err(db_error)?;
            }
        }
        tx.commit().await?;
        Ok(Some(follow_ups))
    }
}
