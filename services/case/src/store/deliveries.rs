//! Services delivered to the person, and payments.

use super::*;

/// Services delivered to the person, and payments.
#[async_trait::async_trait]
pub trait Deliveries {
    /// Records a service.
    async fn add_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewService,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<ServiceDelivery>>>;
    /// Changes a service at `expected_version`.
    async fn update_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        changes: ServiceChanges,
    ) -> HavenResult<Option<ServiceDelivery>>;
    /// A case's services, oldest first.
    async fn list_services(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<ServiceDelivery>>>;
    /// Appends to the cash ledger.
    async fn record_payment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewPayment,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Payment>>>;
    /// The cash ledger of a case, oldest first.
    async fn list_payments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Payment>>>;
}

#[async_trait::async_trait]
impl Deliveries for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn add_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewService,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<ServiceDelivery>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let service = Self::load_service(&mut tx, case_id, replayed_id(&earlier)?)
                .await?
                .ok_or_else(|| corrupt("service"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(service)));
        }
        open_case_required(&case)?;
        sql::query(
            "INSERT INTO case_services (id, case_id, service_type, provider_organization_id, planned_on, started_on, ended_on, \
             status, version, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10)",
        )
        .bind(id)
        .bind(case_id)
        .bind(new.service_type.as_str())
        .bind(new.provider_organization_id)
        .bind(new.planned_on.map(|date| date.to_string()))
        .bind(new.started_on.map(|date| date.to_string()))
        .bind(new.ended_on.map(|date| date.to_string()))
        .bind(new.status.as_str())
        .bind(OffsetDateTime::now_utc())
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await
        ?;
        let payload = serde_json::json!({
            "service_id": id,
            "type": new.service_type.as_str(),
            "provider_organization_id": new.provider_organization_id,
            "status": new.status.as_str(),
        });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.service_added", payload)),
        )
        .await?;
        let service = Self::load_service(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("service"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(service)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id, service_id = %id))]
    async fn update_service(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        id: Uuid,
        expected_version: i64,
        changes: ServiceChanges,
    ) -> HavenResult<Option<ServiceDelivery>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let Some(service) = Self::load_service(&mut tx, case_id, id).await? else {
            return Ok(None);
        };
        if service.version != expected_version {
            return Err(stale(service.version));
        }
        let status = changes.status.unwrap_or(service.status);
        if !service.status.can_move_to(status) {
            return Err(conflict(format!(
                "a `{}` service cannot become `{}`",
                service.status.as_str(),
                status.as_str()
            )));
        }
        let started_on = changes.started_on.or(service.started_on);
        let ended_on = changes.ended_on.or(service.ended_on);
        if let (Some(start), Some(end)) = (started_on, ended_on)
            && end < start
        {
            return Err(HavenError::invalid_field(
                "ended_on",
                "is before started_on",
            ));
        }
        let updated = sql::query(
            "UPDATE case_services SET status = $3, started_on = $4, ended_on = $5, version = version + 1 \
             WHERE case_id = $1 AND id = $2 AND version = $6",
        )
        .bind(case_id)
        .bind(id)
        .bind(status.as_str())
        .bind(started_on.map(|date| date.to_string()))
        .bind(ended_on.map(|date| date.to_string()))
        .bind(expected_version)
        .execute(&mut tx)
        .await
        ?;
        if updated != 1 {
            return Err(stale(service.version));
        }
        let payload = serde_json::json!({
            "service_id": id,
            "type": service.service_type.as_str(),
            "from": service.status.as_str(),
            "to": status.as_str(),
        });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.service_updated", payload)),
        )
        .await?;
        let service = Self::load_service(&mut tx, case_id, id)
            .await?
            .ok_or_else(|| corrupt("service"))?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(service))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_services(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<ServiceDelivery>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<ServiceRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_SERVICES} ORDER BY seq"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(ServiceDelivery::try_from)
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn record_payment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        new: NewPayment,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Payment>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let row: Option<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_PAYMENTS} AND id = $2"
            )))
            .bind(case_id)
            .bind(replayed_id(&earlier)?)
            .fetch_optional(&mut tx)
            .await?;
            let row = row.ok_or_else(|| corrupt("payment"))?;
            let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
            let key = self.opened_key(&mut tx, &receipt, case_id).await?;
            let payment = row.into_payment(key.as_ref())?;
            tx.commit().await?;
            return Ok(Some(Created::replay(payment)));
        }
        let key = self.text_key(&mut tx, case_id).await?;
        let (amount, currency, paid_on, purpose, service_id, reverses) = match new {
            NewPayment::Payment {
                amount,
                currency,
                paid_on,
                purpose,
                service_id,
            } => {
                open_case_required(&case)?;
                if let Some(service_id) = service_id {
                    let service = Self::load_service(&mut tx, case_id, service_id).await?;
                    if !service
                        .is_some_and(|service| service.service_type == ServiceType::CashAssistance)
                    {
                        return Err(HavenError::invalid_field(
                            "service_id",
                            "must be a cash-assistance service of this case",
                        ));
                    }
                }
                (amount, currency, paid_on, purpose, service_id, None)
            }
            NewPayment::Reversal {
                payment_id,
                paid_on,
                purpose,
            } => {
                let original: Option<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT_PAYMENTS} AND id = $2"
                )))
                .bind(case_id)
                .bind(payment_id)
                .fetch_optional(&mut tx)
                .await?;
                // Only its amount and links are needed: its purpose stays sealed.
                let Some(original) = original.map(|row| row.into_payment(None)).transpose()? else {
                    return Err(HavenError::invalid_field(
                        "reverses_payment_id",
                        "is not a payment of this case",
                    ));
                };
                if original.reverses_payment_id.is_some() {
                    return Err(HavenError::invalid_field(
                        "reverses_payment_id",
                        "is itself a reversal",
                    ));
                }
                (
                    Amount(-original.amount.0),
                    original.currency,
                    paid_on,
                    purpose,
                    original.service_id,
                    Some(payment_id),
                )
            }
        };
        let sealed_purpose =
            CaseText::PaymentPurpose.seal(key.as_ref(), &TextRow::id(id), &purpose)?;
        let inserted = sql::query(
            "INSERT INTO payments (id, case_id, amount_minor, currency, paid_on, purpose, purpose_encrypted, service_id, \
             reverses_payment_id, recorded_at, recorded_by) VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(case_id)
        .bind(amount.0)
        .bind(&currency)
        .bind(paid_on.to_string())
        .bind(sealed_purpose)
        .bind(service_id)
        .bind(reverses)
        .bind(OffsetDateTime::now_utc())
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if error.is_unique_violation() => {
                return Err(conflict("that payment was already reversed"));
            }
            Err(error) => return Err(error.into()),
        }
        let payload = serde_json::json!({
            "payment_id": id,
            "amount": amount.to_string(),
            "currency": currency,
            "reverses_payment_id": reverses,
        });
        let receipt = Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.payment_recorded", payload)),
        )
        .await?;
        let row: PaymentRow = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENTS} AND id = $2"
        )))
        .bind(case_id)
        .bind(id)
        .fetch_one(&mut tx)
        .await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        let payment = row.into_payment(key.as_ref())?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Created::new(payment)))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_payments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Payment>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<PaymentRow> = sql::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENTS} ORDER BY seq"
        )))
        .bind(case_id)
        .fetch_all(&mut tx)
        .await?;
        let receipt = Self::record(&mut tx, context, "case.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| row.into_payment(key.as_ref()))
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }
}
