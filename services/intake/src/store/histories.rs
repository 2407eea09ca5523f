//! A screening's histories: consents appended, and decisions that move it to their
//! stage and start the statutory clocks of that stage.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_error::HavenResult;
use haven_events::NewEvent;
use haven_storage::sql::{self, Tx};

use super::clocks::INSERT_CLOCK;
use super::{NewConsent, NewDecision, Reach, Screenings, audit, publish};
use crate::clocks;
use crate::domain::Screening;

const INSERT_CONSENT: &str = "INSERT INTO consents (id, screening_id, purpose, given, method, recorded_by, recorded_at, \
    by_guardian, organization_types) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_DECISION: &str = "INSERT INTO decisions (id, screening_id, stage, deciding_organization_type, \
    legal_basis, legal_basis_ciphertext, decided_at, reasons, reasons_ciphertext, recorded_by, recorded_at, \
    deciding_organization_id) VALUES ($1, $2, $3, $4, '', $5, $6, '', $7, $8, $9, $10)";
const BUMP_VERSION: &str = "UPDATE screenings SET version = version + 1 WHERE id = $1";
const SET_STAGE: &str = "UPDATE screenings SET stage = $2, version = version + 1 WHERE id = $1";

impl Screenings {
    /// Encrypts a decision's typed text (`column`: reasons, legal basis) under the
    /// screening's key (made now for screenings recorded before it was encrypted, or
    /// whose key was shredded).
    pub(super) async fn seal_decision_text(
        &self,
        tx: &mut Tx,
        screening_id: Uuid,
        decision_id: Uuid,
        column: &'static str,
        text: &str,
    ) -> HavenResult<Vec<u8>> {
        let key = self.screening_key(tx, screening_id).await?;
        key.seal("decisions", column, decision_id.as_bytes(), text)
    }

    #[tracing::instrument(skip_all, fields(screening_id = %id))]
    pub(super) async fn record_consent(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        consent: NewConsent,
    ) -> HavenResult<Option<Screening>> {
        let mut tx = self.database.begin_write().await?;
        let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        let screening = &loaded.screening;
        if Self::already_done(
            &mut tx,
            screening.organization_id,
            id,
            consent.once.as_ref(),
        )
        .await?
        {
            let screening = self.replayed(&mut tx, context, id).await?;
            tx.commit().await?;
            return Ok(Some(screening));
        }
        sql::query(INSERT_CONSENT)
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(consent.purpose.as_str())
            .bind(consent.given)
            .bind(consent.method.as_str())
            .bind(&consent.recorded_by)
            .bind(OffsetDateTime::now_utc())
            .bind(consent.by_guardian)
            .bind(consent.organization_types.join(","))
            .execute(&mut tx)
            .await?;
        sql::query(BUMP_VERSION).bind(id).execute(&mut tx).await?;
        let event = NewEvent {
            event_type: "screening.consent_recorded",
            aggregate_id: id,
            organization_id: screening.organization_id,
            payload: serde_json::json!({
                "purpose": consent.purpose.as_str(),
                "given": consent.given,
            }),
        };
        publish(&mut tx, event).await?;
        let receipt = audit(&mut tx, context.entry("screening.consent", "screening", id)).await?;
        let updated = self.reload(&mut tx, id, &receipt).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(updated))
    }

    #[tracing::instrument(skip_all, fields(screening_id = %id))]
    pub(super) async fn record_decision(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        decision: NewDecision,
        rules: &[haven_config::ClockRule],
    ) -> HavenResult<Option<Screening>> {
        let mut tx = self.database.begin_write().await?;
        let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        if Self::already_done(
            &mut tx,
            loaded.screening.organization_id,
            id,
            decision.once.as_ref(),
        )
        .await?
        {
            let screening = self.replayed(&mut tx, context, id).await?;
            tx.commit().await?;
            return Ok(Some(screening));
        }
        let screening = &loaded.screening;
        let decision_id = Uuid::now_v7();
        let reasons = match decision.reasons.as_str() {
            "" => None,
            reasons => Some(
                self.seal_decision_text(&mut tx, id, decision_id, "reasons", reasons)
                    .await?,
            ),
        };
        let legal_basis = self
            .seal_decision_text(
                &mut tx,
                id,
                decision_id,
                "legal_basis",
                &decision.legal_basis,
            )
            .await?;
        sql::query(INSERT_DECISION)
            .bind(decision_id)
            .bind(id)
            .bind(decision.stage.as_str())
            .bind(decision.deciding_organization_type.as_str())
            .bind(legal_basis)
            .bind(decision.decided_at)
            .bind(reasons)
            .bind(&decision.recorded_by)
            .bind(OffsetDateTime::now_utc())
            .bind(decision.deciding_organization_id)
            .execute(&mut tx)
            .await?;
        sql::query(SET_STAGE)
            .bind(id)
            .bind(decision.stage.as_str())
            .execute(&mut tx)
            .await?;
        let event = NewEvent {
            event_type: "screening.decision_recorded",
            aggregate_id: id,
            organization_id: screening.organization_id,
            payload: serde_json::json!({
                "stage": decision.stage.as_str(),
                "previous_stage": screening.stage.as_str(),
                "deciding_organization_type": decision.deciding_organization_type.as_str(),
                "decided_at": decision.decided_at.unix_timestamp(),
            }),
        };
        publish(&mut tx, event).await?;
        for rule in clocks::started_by(rules, decision.stage) {
            let clock_id = Uuid::now_v7();
            let started = sql::query(INSERT_CLOCK)
                .bind(clock_id)
                .bind(id)
                .bind(screening.organization_id)
                .bind(&rule.name)
                .bind(&rule.description)
                .bind(decision.decided_at)
                .bind(clocks::due_at(rule, decision.decided_at))
                .execute(&mut tx)
                .await?;
            if started == 1 {
                let event = NewEvent {
                    event_type: "clock.started",
                    aggregate_id: clock_id,
                    organization_id: screening.organization_id,
                    payload: serde_json::json!({ "screening_id": id, "name": rule.name }),
                };
                publish(&mut tx, event).await?;
            }
        }
        let receipt = audit(&mut tx, context.entry("screening.decide", "screening", id)).await?;
        let updated = self.reload(&mut tx, id, &receipt).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(updated))
    }
}
