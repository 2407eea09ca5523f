//! Screenings: recording one, reading and listing them (each read audited), replacing
//! their assessment, and linking the case opened for them.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, Receipt, SealingKey};
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::NewEvent;
use haven_storage::sql::{self, Tx};

use super::rows::{ConsentRow, DecisionRow, Loaded, ScreeningRow, part_json, seal_notes};
use super::{
    IdempotencyKey, NewScreening, Reach, SCREENING_READ, ScreeningFilter, Screenings, audit,
    publish,
};
use crate::assessment::AssessmentParts;
use crate::domain::{IdentificationStage, ReferralSource, Screening};
use crate::persons::{Gender, PersonDetails};

pub(super) const SCREENING_COLUMNS: &str = "s.seq, s.id, s.organization_id, s.screened_by, s.referral_source, \
    s.screened_at, s.settlement, s.language, s.interpreter_used, s.is_minor, s.stage, s.case_id, s.created_at, \
    s.version, s.person_id, p.code AS person_code, s.indicator_answers, s.exploitation, s.risk, \
    s.re_trafficked, s.wrapped_key, s.latitude, s.longitude, s.guardian, s.indicator_notes \
    FROM screenings s LEFT JOIN persons p ON p.id = s.person_id";
const SELECT_SCREENING: &str = "SELECT s.seq, s.id, s.organization_id, s.screened_by, s.referral_source, \
    s.screened_at, s.settlement, s.language, s.interpreter_used, s.is_minor, s.stage, s.case_id, s.created_at, \
    s.version, s.person_id, p.code AS person_code, s.indicator_answers, s.exploitation, s.risk, \
    s.re_trafficked, s.wrapped_key, s.latitude, s.longitude, s.guardian, s.indicator_notes \
    FROM screenings s LEFT JOIN persons p ON p.id = s.person_id \
    WHERE s.id = $1 AND ($2 IS NULL OR s.organization_id = $2) AND ($3 OR NOT s.sealed)";
const SELECT_CONSENTS: &str = "SELECT id, purpose, given, method, recorded_by, recorded_at, by_guardian, \
    organization_types FROM consents WHERE screening_id = $1 ORDER BY seq";
const SELECT_DECISIONS: &str = "SELECT id, stage, deciding_organization_type, legal_basis, decided_at, reasons, \
    reasons_ciphertext, legal_basis_ciphertext, recorded_by, recorded_at, deciding_organization_id \
    FROM decisions WHERE screening_id = $1 ORDER BY seq";
const INSERT_SCREENING: &str = "INSERT INTO screenings (id, organization_id, screened_by, referral_source, \
    screened_at, settlement, language, interpreter_used, is_minor, stage, case_id, created_at, version, person_id, \
    indicator_set_version, indicator_answers, exploitation, risk, wrapped_key, latitude, longitude, guardian, \
    indicator_notes) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, 1, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";
const UPDATE_ASSESSMENT: &str = "UPDATE screenings SET \
    indicator_set_version = CASE WHEN $3 THEN $4 ELSE indicator_set_version END, \
    indicator_answers = CASE WHEN $3 THEN $5 ELSE indicator_answers END, \
    indicator_notes = CASE WHEN $3 THEN $10 ELSE indicator_notes END, \
    exploitation = CASE WHEN $6 THEN $7 ELSE exploitation END, \
    risk = CASE WHEN $8 THEN $9 ELSE risk END, \
    version = version + 1 WHERE id = $1 AND version = $2";
const LINK_CASE: &str =
    "UPDATE screenings SET case_id = $2, version = version + 1 WHERE id = $1 AND case_id IS NULL";
const SELECT_WRAPPED_KEY: &str = "SELECT wrapped_key FROM screenings WHERE id = $1";
const SET_WRAPPED_KEY: &str = "UPDATE screenings SET wrapped_key = $2 WHERE id = $1";

impl Screenings {
    /// The screening `id` inside `scope`, its texts still sealed.
    pub(super) async fn load(tx: &mut Tx, scope: Reach, id: Uuid) -> HavenResult<Option<Loaded>> {
        let row: Option<ScreeningRow> = sql::query_as(SELECT_SCREENING)
            .bind(id)
            .bind(scope.organization())
            .bind(scope.sees_sealed())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let consents: Vec<ConsentRow> = sql::query_as(SELECT_CONSENTS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let decisions: Vec<DecisionRow> = sql::query_as(SELECT_DECISIONS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        Loaded::from_rows(row, consents, decisions).map(Some)
    }

    /// The screening `id` after a write in `tx`, opened under the write's receipt.
    pub(super) async fn reload(
        &self,
        tx: &mut Tx,
        id: Uuid,
        receipt: &Receipt,
    ) -> HavenResult<Screening> {
        Self::load(tx, Reach::INTERNAL, id)
            .await?
            .ok_or_else(|| HavenError::internal(std::io::Error::other("screening vanished")))?
            .open(&self.crypto, receipt)
    }

    /// Loads the consent and decision histories of listed screenings.
    async fn with_histories(tx: &mut Tx, rows: Vec<ScreeningRow>) -> HavenResult<Vec<Loaded>> {
        let mut screenings = Vec::with_capacity(rows.len());
        for row in rows {
            let consents: Vec<ConsentRow> = sql::query_as(SELECT_CONSENTS)
                .bind(row.id)
                .fetch_all(&mut *tx)
                .await?;
            let decisions: Vec<DecisionRow> = sql::query_as(SELECT_DECISIONS)
                .bind(row.id)
                .fetch_all(&mut *tx)
                .await?;
            screenings.push(Loaded::from_rows(row, consents, decisions)?);
        }
        Ok(screenings)
    }

    /// The screening's data key, made now for screenings recorded before narratives
    /// were encrypted or whose key was shredded.
    pub(super) async fn screening_key(
        &self,
        tx: &mut Tx,
        screening_id: Uuid,
    ) -> HavenResult<SealingKey> {
        let wrapped: Option<Vec<u8>> = sql::query_scalar(SELECT_WRAPPED_KEY)
            .bind(screening_id)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(wrapped) = wrapped {
            return self.crypto.sealing_key(screening_id, &wrapped);
        }
        let (key, wrapped) = self.crypto.generate(screening_id)?;
        sql::query(SET_WRAPPED_KEY)
            .bind(screening_id)
            .bind(wrapped)
            .execute(&mut *tx)
            .await?;
        Ok(key)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn create_screening_once(
        &self,
        context: &AuditContext,
        new: NewScreening,
        person: Option<PersonDetails>,
        once: Option<IdempotencyKey>,
    ) -> HavenResult<(Screening, bool)> {
        if let Some(once) = &once
            && let Some(earlier) = self
                .replay_screening(context, new.organization_id, once)
                .await?
        {
            return Ok((earlier, true));
        }
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let (screening_key, wrapped_screening_key) = self.crypto.generate(id)?;
        let guardian = match &new.guardian {
            None => None,
            Some(guardian) => {
                let json = serde_json::to_string(guardian).map_err(HavenError::internal)?;
                Some(screening_key.seal("screenings", "guardian", id.as_bytes(), &json)?)
            }
        };
        let mut tx = self.database.begin_write().await?;
        let person_id = match &person {
            Some(details) => Some(
                self.insert_person(&mut tx, context, new.organization_id, details, now)
                    .await?,
            ),
            None => None,
        };
        sql::query(INSERT_SCREENING)
            .bind(id)
            .bind(new.organization_id)
            .bind(&new.screened_by)
            .bind(new.referral_source.as_str())
            .bind(new.screened_at)
            .bind(&new.settlement)
            .bind(&new.language)
            .bind(new.interpreter_used)
            .bind(new.is_minor)
            .bind(IdentificationStage::Screened.as_str())
            .bind(now)
            .bind(person_id)
            .bind(
                new.assessment
                    .indicators
                    .as_ref()
                    .map(|answers| answers.version),
            )
            .bind(part_json(&new.assessment.indicators)?)
            .bind(part_json(&new.assessment.exploitation)?)
            .bind(part_json(&new.assessment.risk)?)
            .bind(wrapped_screening_key)
            .bind(new.coordinates.map(|(latitude, _)| latitude))
            .bind(new.coordinates.map(|(_, longitude)| longitude))
            .bind(guardian)
            .bind(seal_notes(
                &screening_key,
                id,
                new.assessment.indicators.as_ref(),
            )?)
            .execute(&mut tx)
            .await?;
        // Categorical facts only: the event feed never carries personal data.
        let event = NewEvent {
            event_type: "screening.created",
            aggregate_id: id,
            organization_id: new.organization_id,
            payload: serde_json::json!({
                "referral_source": new.referral_source.as_str(),
                "settlement": new.settlement,
                "is_minor": new.is_minor,
                "screened_at": new.screened_at.unix_timestamp(),
                "person_id": person_id,
                "gender": person.as_ref().and_then(|p| p.gender).map(Gender::as_str),
                "birth_year": person.as_ref().and_then(|p| p.birth_year),
                "exploitation_types": new.assessment.exploitation.as_ref().map(|e| e.types.clone()),
                "means_of_control": new.assessment.exploitation.as_ref().map(|e| e.means_of_control.clone()),
                "citizenships": person.as_ref().map(|p| p.citizenships.clone()),
                "risk_level": new.assessment.risk.as_ref().map(|r| r.level.clone()),
            }),
        };
        publish(&mut tx, event).await?;
        if let Some(once) = &once {
            let recorded =
                Self::record_created_key(&mut tx, new.organization_id, once, id, now).await;
            match recorded {
                Ok(()) => {}
                // A concurrent retry won: undo ours, answer with theirs.
                Err(error) if error.is_unique_violation() => {
                    drop(tx);
                    let earlier = self
                        .replay_screening(context, new.organization_id, once)
                        .await?
                        .ok_or_else(|| HavenError::internal(error))?;
                    return Ok((earlier, true));
                }
                Err(error) => return Err(error.into()),
            }
        }
        let receipt = audit(&mut tx, context.entry("screening.create", "screening", id)).await?;
        let screening = self.reload(&mut tx, id, &receipt).await?;
        tx.commit().await?;
        self.signal.notify();
        tracing::info!(screening_id = %id, person_id = ?person_id, "screening created");
        Ok((screening, false))
    }

    #[tracing::instrument(skip_all, fields(screening_id = %id))]
    pub(super) async fn get_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Screening>> {
        let mut tx = self.database.begin_write().await?;
        let Some(loaded) = Self::load(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        let receipt = audit(&mut tx, context.entry(SCREENING_READ, "screening", id)).await?;
        let screening = loaded.open(&self.crypto, &receipt)?;
        tx.commit().await?;
        Ok(Some(screening))
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn list_screenings(
        &self,
        context: &AuditContext,
        scope: Reach,
        filter: &ScreeningFilter,
        after: Option<i64>,
        limit: u32,
    ) -> HavenResult<Vec<Screening>> {
        let select = format!(
            "SELECT {SCREENING_COLUMNS} WHERE s.seq > $1 AND ($2 IS NULL OR s.organization_id = $2) \
             AND ($4 IS NULL OR s.stage = $4) AND ($5 IS NULL OR s.referral_source = $5) \
             AND ($6 IS NULL OR s.screened_at >= $6) AND ($7 IS NULL OR s.screened_at < $7) \
             AND ($8 IS NULL OR EXISTS (SELECT 1 FROM clocks c WHERE c.screening_id = s.id \
                  AND c.completed_at IS NULL AND c.due_at <= $8)) \
             AND ($9 OR NOT s.sealed) ORDER BY s.seq LIMIT $3"
        );
        let mut tx = self.database.begin_write().await?;
        let rows: Vec<ScreeningRow> = sql::query_as(sqlx::AssertSqlSafe(select))
            .bind(after.unwrap_or(0))
            .bind(scope.organization())
            .bind(i64::from(limit))
            .bind(filter.stage.map(IdentificationStage::as_str))
            .bind(filter.referral_source.map(ReferralSource::as_str))
            .bind(filter.screened_from)
            .bind(filter.screened_before)
            .bind(filter.overdue_clock_at)
            .bind(scope.sees_sealed())
            .fetch_all(&mut tx)
            .await?;
        let loaded = Self::with_histories(&mut tx, rows).await?;
        // One entry per screening read, so each record's trail names this reader.
        let mut screenings = Vec::with_capacity(loaded.len());
        for loaded in loaded {
            let entry = context.entry(SCREENING_READ, "screening", loaded.screening.id);
            let receipt = audit(&mut tx, entry).await?;
            screenings.push(loaded.open(&self.crypto, &receipt)?);
        }
        tx.commit().await?;
        Ok(screenings)
    }

    #[tracing::instrument(skip_all, fields(screening_id = %id, case_id = %case_id))]
    pub(super) async fn link_case(&self, id: Uuid, case_id: Uuid) -> HavenResult<Screening> {
        let mut tx = self.database.begin_write().await?;
        let linked = sql::query(LINK_CASE)
            .bind(id)
            .bind(case_id)
            .execute(&mut tx)
            .await?;
        // Linking shows nothing of the screening's texts, so it opens none.
        let screening = Self::load(&mut tx, Reach::INTERNAL, id)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?
            .without_texts();
        // The case may have been sealed before intake heard back from it.
        if let Some(sealed_case) = Self::sealed_case_of(&mut tx, id).await? {
            Self::seal_case(&mut tx, sealed_case).await?;
        }
        if linked == 1 {
            let event = NewEvent {
                event_type: "screening.case_opened",
                aggregate_id: id,
                organization_id: screening.organization_id,
                payload: serde_json::json!({ "case_id": case_id }),
            };
            publish(&mut tx, event).await?;
        }
        tx.commit().await?;
        self.signal.notify();
        Ok(screening)
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn awaiting_case(
        &self,
        limit: u32,
        when_presumed: bool,
    ) -> HavenResult<Vec<Screening>> {
        let stages = if when_presumed {
            "('identified', 'presumed_victim', 'reasonable_grounds_positive')"
        } else {
            "('identified')"
        };
        let select = format!(
            "SELECT {SCREENING_COLUMNS} WHERE s.seq > $1 AND ($2 IS NULL OR s.organization_id = $2) \
             AND s.case_id IS NULL AND s.stage IN {stages} \
             AND (SELECT given FROM consents WHERE consents.screening_id = s.id \
                  AND consents.purpose = 'assistance' ORDER BY consents.seq DESC LIMIT 1) = TRUE \
             ORDER BY s.seq LIMIT $3"
        );
        // Read only: the candidates and their histories from one snapshot.
        let mut tx = self.database.begin_read().await?;
        let rows: Vec<ScreeningRow> = sql::query_as(sqlx::AssertSqlSafe(select))
            .bind(0_i64)
            .bind(None::<Uuid>)
            .bind(i64::from(limit))
            .fetch_all(&mut tx)
            .await?;
        let candidates = Self::with_histories(&mut tx, rows).await?;
        tx.commit().await?;
        // Opening a case needs none of the screening's texts.
        Ok(candidates
            .into_iter()
            .map(Loaded::without_texts)
            .filter(|screening| screening.needs_case(when_presumed))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(screening_id = %id))]
    pub(super) async fn update_screening(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        expected_version: i64,
        parts: AssessmentParts,
    ) -> HavenResult<Option<Screening>> {
        let mut tx = self.database.begin_write().await?;
        let Some(current) = Self::load(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        let current = current.without_texts();
        let notes = match parts
            .indicators
            .as_ref()
            .filter(|answers| !answers.notes.is_empty())
        {
            None => None,
            Some(answers) => {
                let key = self.screening_key(&mut tx, id).await?;
                seal_notes(&key, id, Some(answers))?
            }
        };
        let updated = sql::query(UPDATE_ASSESSMENT)
            .bind(id)
            .bind(expected_version)
            .bind(parts.indicators.is_some())
            .bind(parts.indicators.as_ref().map(|answers| answers.version))
            .bind(part_json(&parts.indicators)?)
            .bind(parts.exploitation.is_some())
            .bind(part_json(&parts.exploitation)?)
            .bind(parts.risk.is_some())
            .bind(part_json(&parts.risk)?)
            .bind(notes)
            .execute(&mut tx)
            .await?;
        if updated == 0 {
            return Err(HavenError::new(
                ErrorCode::PreconditionFailed,
                format!(
                    "the screening changed since you read it (now at version {})",
                    current.version
                ),
            ));
        }
        let event = NewEvent {
            event_type: "screening.updated",
            aggregate_id: id,
            organization_id: current.organization_id,
            payload: serde_json::json!({
                "exploitation_types": parts.exploitation.as_ref().map(|e| e.types.clone()),
                "means_of_control": parts.exploitation.as_ref().map(|e| e.means_of_control.clone()),
                "risk_level": parts.risk.as_ref().map(|r| r.level.clone()),
                "indicator_set_version": parts.indicators.as_ref().map(|answers| answers.version),
            }),
        };
        publish(&mut tx, event).await?;
        let receipt = audit(&mut tx, context.entry("screening.update", "screening", id)).await?;
        let screening = self.reload(&mut tx, id, &receipt).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(screening))
    }
}
