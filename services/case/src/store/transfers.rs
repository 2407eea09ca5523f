//! Transfers of a case to another organisation.

use super::*;

/// Transfers of a case to another organisation.
#[async_trait::async_trait]
pub trait Transfers {
    /// Asks `to_organization_id` to take over the case.
    async fn request_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        to_organization_id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Transfer>>;
    /// The receiving organisation (inside `scope`) accepts or rejects a transfer.
    async fn decide_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Transfer>>;
    /// Transfers of a case (owner), or to and from the organisation of `scope`.
    async fn list_transfers(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Option<Uuid>,
        pending_only: bool,
    ) -> HavenResult<Option<Vec<Transfer>>>;
}

#[async_trait::async_trait]
impl Transfers for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn request_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        expected_version: i64,
        to_organization_id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Transfer>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        open_case_required(&case)?;
        if let Some(pending) = &case.pending_transfer {
            return Err(conflict(format!(
                "a transfer to organisation {} is already waiting for an answer",
                pending.to_organization_id
            )));
        }
        if to_organization_id == case.organization_id {
            return Err(HavenError::invalid_field(
                "to_organization_id",
                "is the organisation that already owns the case",
            ));
        }
        if case
            .closure
            .as_ref()
            .is_some_and(|closure| closure.status == ApprovalStatus::Requested)
        {
            return Err(conflict("the case is waiting for closure approval"));
        }
        Self::bump(&mut tx, &case, expected_version).await?;
        let id = Uuid::now_v7();
        let key = self.text_key(&mut tx, case_id).await?;
        let reason = CaseText::TransferReason.seal(key.as_ref(), &TextRow::id(id), reason)?;
        sql::query(
            "INSERT INTO transfers (id, case_id, from_organization_id, to_organization_id, reason, reason_encrypted, status, \
             requested_by, requested_at) VALUES ($1, $2, $3, $4, '', $5, 'requested', $6, $7)",
        )
        .bind(id)
        .bind(case_id)
        .bind(case.organization_id)
        .bind(to_organization_id)
        .bind(reason)
        .bind(&context.principal.subject)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut tx)
        .await
        ?;
        let payload = serde_json::json!({ "transfer_id": id, "from": case.organization_id, "to": to_organization_id });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.transfer",
            &case,
            Some(("case.transfer_requested", payload)),
        )
        .await?;
        let transfer = self
            .load_transfer(&mut tx, id, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("transfer"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(transfer))
    }

    #[tracing::instrument(skip_all, fields(transfer_id = %id))]
    async fn decide_transfer(
        &self,
        context: &AuditContext,
        scope: Scope,
        id: Uuid,
        decision: ReviewDecision,
        comment: &str,
    ) -> HavenResult<Option<Transfer>> {
        let mut tx = self.database.begin_write().await?;
        // Only the receiving organisation decides; to anyone else it does not exist.
        let Some(transfer) = self
            .load_transfer(&mut tx, id, None)
            .await?
            .filter(|transfer| scope.contains(transfer.to_organization_id))
        else {
            return Ok(None);
        };
        if transfer.status != ApprovalStatus::Requested {
            return Err(conflict(format!(
                "the transfer was already {}",
                if transfer.status == ApprovalStatus::Approved {
                    "accepted"
                } else {
                    "decided"
                }
            )));
        }
        let case = self.reload(&mut tx, transfer.case_id, None).await?;
        let status = match decision {
            ReviewDecision::Approve => ApprovalStatus::Approved,
            ReviewDecision::Reject => ApprovalStatus::Rejected,
        };
        let key = self.text_key(&mut tx, case.id).await?;
        let comment = CaseText::TransferDecision.seal(key.as_ref(), &TextRow::id(id), comment)?;
        sql::query(
            "UPDATE transfers SET status = $2, decided_by = $3, decided_at = $4, decision_comment_encrypted = $5 \
             WHERE id = $1 AND status = 'requested'",
        )
            .bind(id)
            .bind(status.as_str())
            .bind(&context.principal.subject)
            .bind(OffsetDateTime::now_utc())
            .bind(comment)
            .execute(&mut tx)
            .await
            ?;
        // The owner changes only on acceptance; the new owner assigns its own caseworkers.
        let event_type = match decision {
            ReviewDecision::Approve => {
                sql::query("UPDATE cases SET organization_id = $2, caseworkers = '[]', version = version + 1 WHERE id = $1")
                    .bind(case.id)
                    .bind(transfer.to_organization_id)
                    .execute(&mut tx)
                    .await
                    ?;
                sql::query("DELETE FROM case_caseworkers WHERE case_id = $1")
                    .bind(case.id)
                    .execute(&mut tx)
                    .await?;
                "case.transferred"
            }
            ReviewDecision::Reject => {
                sql::query("UPDATE cases SET version = version + 1 WHERE id = $1")
                    .bind(case.id)
                    .execute(&mut tx)
                    .await?;
                "case.transfer_rejected"
            }
        };
        let owner = self.reload(&mut tx, case.id, None).await?;
        let payload = serde_json::json!({ "transfer_id": id, "from": transfer.from_organization_id, "to": transfer.to_organization_id });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.transfer",
            &owner,
            Some((event_type, payload)),
        )
        .await?;
        let transfer = self
            .load_transfer(&mut tx, id, Some(&receipt))
            .await?
            .ok_or_else(|| corrupt("transfer"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(transfer))
    }

    #[tracing::instrument(skip_all)]
    async fn list_transfers(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Option<Uuid>,
        pending_only: bool,
    ) -> HavenResult<Option<Vec<Transfer>>> {
        let mut tx = self.database.begin_write().await?;
        let mut receipts = std::collections::BTreeMap::new();
        let rows: Vec<TransferRow> = match case_id {
            Some(case_id) => {
                let Some(case) = self.load(&mut tx, context, scope, case_id).await? else { return Ok(None) };
                receipts.insert(case_id, Self::record(&mut tx, context, "case.read", &case, None).await?);
                sql::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_TRANSFERS} WHERE t.case_id = $1 AND ($2 = FALSE OR t.status = 'requested') ORDER BY t.seq"
                )))
                .bind(case_id)
                .bind(pending_only)
                .fetch_all(&mut tx)
                .await
                ?
            }
            None => sql::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_TRANSFERS} WHERE ($1 IS NULL OR t.to_organization_id = $1 OR t.from_organization_id = $1) \
                 AND ($2 = FALSE OR t.status = 'requested') ORDER BY t.seq DESC LIMIT 200"
            )))
            .bind(scope.organization())
            .bind(pending_only)
            .fetch_all(&mut tx)
            .await
            ?,
        };
        // A list across cases reads each case it shows, as one case's list does,
        // and each transfer's texts open under the entry about its case.
        let mut transfers = Vec::with_capacity(rows.len());
        for row in rows {
            let receipt = match receipts.entry(row.case_id) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(
                    AuditWrite::append_audit(
                        &mut tx,
                        SERVICE,
                        &context.entry("case.read", "case", row.case_id),
                    )
                    .await
                    .map_err(db_error)?,
                ),
            };
            transfers.push(row.into_transfer(&self.crypto, Some(receipt))?);
        }
        tx.commit().await?;
        Ok(Some(transfers))
    }
}
