//! Individual plans: submission, review and their actions.

use super::*;

/// Individual plans: submission, review and their actions.
#[async_trait::async_trait]
pub trait Plans {
    /// Submits a new plan version for approval.
    async fn submit_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        goals: Vec<PlanGoal>,
    ) -> HavenResult<Option<Plan>>;
    /// Approves or rejects a submitted plan version.
    #[allow(clippy::too_many_arguments)]
    async fn review_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Plan>>;
    /// A case's plan versions, oldest first, decrypted.
    async fn list_plans(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Plan>>>;
    /// Sets the status of an action of an approved plan.
    #[allow(clippy::too_many_arguments)]
    async fn update_plan_action(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        action_id: Uuid,
        expected_version: i64,
        status: ActionStatus,
    ) -> HavenResult<Option<Plan>>;
}

#[async_trait::async_trait]
impl Plans for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn submit_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        goals: Vec<PlanGoal>,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        open_case_required(&case)?;
        let key = self.writable_key(&mut tx, case_id).await?;
        let (last,): (Option<i32>,) =
            sql::query_as("SELECT MAX(plan_version) FROM plans WHERE case_id = $1")
                .bind(case_id)
                .fetch_one(&mut tx)
                .await?;
        let plan_version = last.unwrap_or(0) + 1;
        let content = serde_json::to_string(&goals).map_err(HavenError::internal)?;
        let sealed = key.seal(
            "plans",
            "content",
            TextRow::plan(case_id, plan_version).as_bytes(),
            &content,
        )?;
        // A newer submission replaces one still waiting for review.
        sql::query("UPDATE plans SET status = 'superseded', version = version + 1 WHERE case_id = $1 AND status = 'requested'")
            .bind(case_id)
            .execute(&mut tx)
            .await
            ?;
        sql::query(
            "INSERT INTO plans (case_id, plan_version, content, status, submitted_by, submitted_at, version) \
             VALUES ($1, $2, $3, 'requested', $4, $5, 1)",
        )
        .bind(case_id)
        .bind(plan_version)
        .bind(sealed)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        for action in goals.iter().flat_map(|goal| goal.actions.iter()) {
            sql::query("INSERT INTO plan_actions (id, case_id, plan_version, due_on, status) VALUES ($1, $2, $3, $4, $5)")
                .bind(action.id)
                .bind(case_id)
                .bind(plan_version)
                .bind(action.due_on.to_string())
                .bind(ActionStatus::Planned.as_str())
                .execute(&mut tx)
                .await
                ?;
        }
        let domains: Vec<&str> = goals.iter().map(|goal| goal.domain.as_str()).collect();
        let payload = serde_json::json!({ "plan_version": plan_version, "domains": domains });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.plan_submitted", payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, plan_version))]
    async fn review_plan(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        expected_version: i64,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(plan) = self.load_plan(&mut tx, case_id, plan_version, None).await? else {
            return Ok(None);
        };
        if plan.version != expected_version {
            return Err(stale(plan.version));
        }
        if plan.status != ApprovalStatus::Requested {
            return Err(conflict(format!(
                "plan version {plan_version} is `{}`, not waiting for review",
                plan.status.as_str()
            )));
        }
        self.may_review(context, &plan.submitted_by, "a plan")?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        if decision == ReviewDecision::Approve {
            // The approved version replaces the previous one, and its actions are
            // the ones tracked for overdue lists.
            sql::query("UPDATE plans SET status = 'superseded', version = version + 1 WHERE case_id = $1 AND status = 'approved'")
                .bind(case_id)
                .execute(&mut tx)
                .await
                ?;
            sql::query("UPDATE plan_actions SET active = (plan_version = $2) WHERE case_id = $1")
                .bind(case_id)
                .bind(plan_version)
                .execute(&mut tx)
                .await?;
        }
        let key = self.text_key(&mut tx, case_id).await?;
        let comment = CaseText::PlanReview.seal(
            key.as_ref(),
            &TextRow::plan(case_id, plan_version),
            comment,
        )?;
        let reviewed = sql::query(
            "UPDATE plans SET status = $3, reviewed_by = $4, reviewed_at = $5, review_comment_encrypted = $6, version = version + 1 \
             WHERE case_id = $1 AND plan_version = $2 AND version = $7",
        )
        .bind(case_id)
        .bind(plan_version)
        .bind(status.as_str())
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .bind(comment)
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if reviewed != 1 {
            return Err(stale(plan.version));
        }
        let event_type = if decision == ReviewDecision::Approve {
            "case.plan_approved"
        } else {
            "case.plan_rejected"
        };
        let payload = serde_json::json!({ "plan_version": plan_version });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.plan_review",
            &case,
            Some((event_type, payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_plans(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Plan>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<PlanRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PLANS} ORDER BY plan_version"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        let statuses: Vec<(Uuid, String)> =
            sql::query_as("SELECT id, status FROM plan_actions WHERE case_id = $1")
                .bind(case_id)
                .fetch_all(&mut tx)
                .await?;
        let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| self.decrypt_plan(key.as_ref(), row, &statuses))
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, plan_version))]
    async fn update_plan_action(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        plan_version: i32,
        action_id: Uuid,
        expected_version: i64,
        status: ActionStatus,
    ) -> HavenResult<Option<Plan>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(plan) = self.load_plan(&mut tx, case_id, plan_version, None).await? else {
            return Ok(None);
        };
        // The plan's actions, known without opening its content.
        let (known,): (i64,) =
            sql::query_as("SELECT COUNT(*) FROM plan_actions WHERE case_id = $1 AND plan_version = $2 AND id = $3")
                .bind(case_id)
                .bind(plan_version)
                .bind(action_id)
                .fetch_one(&mut tx)
                .await
                ?;
        if known == 0 {
            return Ok(None);
        }
        if plan.version != expected_version {
            return Err(stale(plan.version));
        }
        if plan.status != ApprovalStatus::Approved {
            return Err(conflict(format!(
                "plan version {plan_version} is `{}`; only the approved plan's actions are tracked",
                plan.status.as_str()
            )));
        }
        sql::query("UPDATE plan_actions SET status = $3 WHERE case_id = $1 AND id = $2")
            .bind(case_id)
            .bind(action_id)
            .bind(status.as_str())
            .execute(&mut tx)
            .await?;
        sql::query(
            "UPDATE plans SET version = version + 1 WHERE case_id = $1 AND plan_version = $2",
        )
        .bind(case_id)
        .bind(plan_version)
        .execute(&mut tx)
        .await?;
        let payload = serde_json::json!({ "plan_version": plan_version, "action_id": action_id, "status": status.as_str() });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.plan_action_updated", payload)),
        )
        .await?;
        let plan = self
            .load_plan(&mut tx, case_id, plan_version, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("plan"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(plan))
    }
}
