//! Closing and reopening a case.

use super::*;

/// Closing and reopening a case.
#[async_trait::async_trait]
pub trait Closures {
    /// Asks for closure.
    async fn request_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        request: ClosureRequest,
    ) -> HavenResult<Option<Case>>;
    /// Approves (closing the case) or rejects the pending closure.
    async fn review_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Case>>;
    /// Reopens a closed case.
    async fn reopen_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        reason: &str,
    ) -> HavenResult<Option<Case>>;
}

#[async_trait::async_trait]
impl Closures for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn request_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        request: ClosureRequest,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        open_case_required(&case)?;
        if case
            .closure
            .as_ref()
            .is_some_and(|closure| closure.status == ApprovalStatus::Requested)
        {
            return Err(conflict("a closure is already waiting for approval"));
        }
        if case.pending_transfer.is_some() {
            return Err(conflict("a transfer of the case is waiting for an answer"));
        }
        let (in_progress,): (i64,) = sql::query_as(
            "SELECT COUNT(*) FROM case_services WHERE case_id = $1 AND status = 'in_progress'",
        )
        .bind(case_id)
        .fetch_one(&mut tx)
        .await?;
        if in_progress > 0 && request.override_reason.is_empty() {
            return Err(conflict(format!(
                "{in_progress} service(s) still in progress: finish or cancel them, or give an override_reason"
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let id = Uuid::now_v7();
        let key = self.text_key(&mut tx, case_id).await?;
        let reason_text =
            CaseText::ClosureReason.seal(key.as_ref(), &TextRow::id(id), &request.reason_text)?;
        let override_reason = CaseText::ClosureOverride.seal(
            key.as_ref(),
            &TextRow::id(id),
            &request.override_reason,
        )?;
        sql::query(
            "INSERT INTO closures (id, case_id, reason, reason_text_encrypted, override_reason_encrypted, status, \
             requested_by, requested_at) VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7)",
        )
        .bind(id)
        .bind(case_id)
        .bind(request.reason.as_str())
        .bind(reason_text)
        .bind(override_reason)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        sql::query("UPDATE cases SET closure_id = $2 WHERE id = $1")
            .bind(case_id)
            .bind(id)
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({
            "reason": request.reason.as_str(),
            "services_in_progress": in_progress,
            "overridden": !request.override_reason.is_empty(),
        });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.closure_requested", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn review_closure(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        let Some(closure) = case
            .closure
            .clone()
            .filter(|closure| closure.status == ApprovalStatus::Requested)
        else {
            return Err(conflict(format!(
                "no closure of this case is waiting for approval (status `{}`)",
                case.status.as_str()
            )));
        };
        self.may_review(context, &closure.requested_by, "a closure")?;
        if decision == ReviewDecision::Approve && !closure.overridden {
            let (in_progress,): (i64,) = sql::query_as(
                "SELECT COUNT(*) FROM case_services WHERE case_id = $1 AND status = 'in_progress'",
            )
            .bind(case_id)
            .fetch_one(&mut tx)
            .await?;
            if in_progress > 0 {
                return Err(conflict(format!(
                    "{in_progress} service(s) started since closure was requested"
                )));
            }
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        let key = self.text_key(&mut tx, case_id).await?;
        let comment =
            CaseText::ClosureReview.seal(key.as_ref(), &TextRow::id(closure.id), comment)?;
        sql::query(
            "UPDATE closures SET status = $2, reviewed_by = $3, reviewed_at = $4, review_comment_encrypted = $5 WHERE id = $1",
        )
            .bind(closure.id)
            .bind(status.as_str())
            .bind(&context.principal.subject)
            .bind(OffsetDateTime::now_utc())
            .bind(comment)
            .execute(&mut tx)
            .await
            ?;
        let event = match decision {
            ReviewDecision::Approve => {
                let closed = closure.reason.closed_status();
                sql::query("UPDATE cases SET status = $2, stage = $3 WHERE id = $1")
                    .bind(case_id)
                    .bind(closed.as_str())
                    .bind(CaseStage::Closed.as_str())
                    .execute(&mut tx)
                    .await?;
                (
                    "case.closed",
                    serde_json::json!({ "reason": closure.reason.as_str(), "status": closed.as_str(), "from_stage": case.stage.as_str() }),
                )
            }
            ReviewDecision::Reject => (
                "case.closure_rejected",
                serde_json::json!({ "reason": closure.reason.as_str() }),
            ),
        };
        let receipt =
            Self::record(&mut tx, context, "case.closure_review", &case, Some(event)).await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn reopen_case(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        reason: &str,
    ) -> HavenResult<Option<Case>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if case.version != expected_version {
            return Err(stale(case.version));
        }
        if !matches!(case.status, CaseStatus::Closed | CaseStatus::ClosedReferred) {
            return Err(conflict(format!(
                "only a closed case can be reopened; this one is `{}`",
                case.status.as_str()
            )));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        // Reopening starts again from an assessment of needs.
        sql::query("UPDATE cases SET status = $2, stage = $3, closure_id = NULL WHERE id = $1")
            .bind(case_id)
            .bind(CaseStatus::Active.as_str())
            .bind(CaseStage::Assessment.as_str())
            .execute(&mut tx)
            .await?;
        // The reason is bound to the reopening's sequence number, known once inserted.
        let (seq,): (i64,) = sql::query_as(
            "INSERT INTO reopenings (case_id, reason, reopened_by, reopened_at) VALUES ($1, '', $2, $3) RETURNING seq",
        )
        .bind(case_id)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .fetch_one(&mut tx)
        .await
        ?;
        let key = self.text_key(&mut tx, case_id).await?;
        let reason = CaseText::ReopeningReason.seal(
            key.as_ref(),
            &TextRow::reopening(case_id, seq),
            reason,
        )?;
        sql::query("UPDATE reopenings SET reason_encrypted = $2 WHERE seq = $1")
            .bind(seq)
            .bind(reason)
            .execute(&mut tx)
            .await?;
        let payload = serde_json::json!({ "from_status": case.status.as_str(), "stage": CaseStage::Assessment.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.reopened", payload)),
        )
        .await?;
        let case = self.reload(&mut tx, case_id, Some(&receipt)).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(case))
    }
}
