//! The rows of intake's tables as stored and what they decode into: a screening with
//! its texts still sealed until an audit receipt opens them, a person, consents,
//! decisions and indicator sets.

use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{Receipt, SealingKey};
use haven_error::{HavenError, HavenResult};

use crate::assessment::{AssessmentParts, IndicatorSet};
use crate::domain::{
    Consent, ConsentMethod, ConsentPurpose, DecidingOrganizationType, Decision,
    IdentificationStage, ReferralSource, Screening,
};
use crate::persons::{ClearFields, EncryptedColumns, Gender, Person, PersonCrypto};

#[derive(Debug, FromRow)]
pub(super) struct ScreeningRow {
    pub(super) seq: i64,
    pub(super) id: Uuid,
    pub(super) organization_id: Uuid,
    pub(super) screened_by: String,
    pub(super) referral_source: String,
    pub(super) screened_at: OffsetDateTime,
    pub(super) settlement: String,
    pub(super) language: String,
    pub(super) interpreter_used: bool,
    pub(super) is_minor: bool,
    pub(super) stage: String,
    pub(super) case_id: Option<Uuid>,
    pub(super) created_at: OffsetDateTime,
    pub(super) version: i64,
    pub(super) person_id: Option<Uuid>,
    pub(super) person_code: Option<String>,
    pub(super) indicator_answers: Option<String>,
    pub(super) exploitation: Option<String>,
    pub(super) risk: Option<String>,
    pub(super) re_trafficked: bool,
    pub(super) wrapped_key: Option<Vec<u8>>,
    pub(super) latitude: Option<f64>,
    pub(super) longitude: Option<f64>,
    pub(super) guardian: Option<Vec<u8>>,
    pub(super) indicator_notes: Option<Vec<u8>>,
}

pub(super) fn parse_part<T: serde::de::DeserializeOwned>(
    stored: Option<String>,
) -> HavenResult<Option<T>> {
    stored
        .map(|json| serde_json::from_str(&json).map_err(HavenError::internal))
        .transpose()
}

pub(super) fn part_json<T: serde::Serialize>(part: &Option<T>) -> HavenResult<Option<String>> {
    part.as_ref()
        .map(|value| serde_json::to_string(value).map_err(HavenError::internal))
        .transpose()
}

#[derive(FromRow)]
pub(super) struct IndicatorSetRow {
    pub(super) version: i32,
    pub(super) definition: String,
    pub(super) published_at: OffsetDateTime,
    pub(super) published_by: String,
}

impl TryFrom<IndicatorSetRow> for IndicatorSet {
    type Error = HavenError;

    fn try_from(row: IndicatorSetRow) -> HavenResult<Self> {
        Ok(IndicatorSet {
            version: row.version,
            definition: serde_json::from_str(&row.definition).map_err(HavenError::internal)?,
            published_at: row.published_at,
            published_by: row.published_by,
        })
    }
}

#[derive(FromRow)]
pub(super) struct PersonRow {
    pub(super) id: Uuid,
    pub(super) code: String,
    pub(super) organization_id: Uuid,
    pub(super) wrapped_key: Option<Vec<u8>>,
    pub(super) given_name: Option<Vec<u8>>,
    pub(super) family_name: Option<Vec<u8>>,
    pub(super) patronymic: Option<Vec<u8>>,
    pub(super) birth_date: Option<Vec<u8>>,
    pub(super) phone: Option<Vec<u8>>,
    pub(super) address: Option<Vec<u8>>,
    pub(super) identity_document_number: Option<Vec<u8>>,
    pub(super) birth_year: Option<i32>,
    pub(super) gender: String,
    pub(super) citizenships: String,
    pub(super) languages: String,
    pub(super) created_at: OffsetDateTime,
    pub(super) erased_at: Option<OffsetDateTime>,
}

impl PersonRow {
    /// The person with their details in the clear, under `receipt`: the audit entry
    /// about this person the operation appended. `None` details once erased.
    pub(super) fn decrypt(self, crypto: &PersonCrypto, receipt: &Receipt) -> HavenResult<Person> {
        let details = match &self.wrapped_key {
            None => None,
            Some(wrapped) => {
                let key = crypto.open(receipt, self.id, wrapped)?;
                let columns: EncryptedColumns = [
                    self.given_name,
                    self.family_name,
                    self.patronymic,
                    self.birth_date,
                    self.phone,
                    self.address,
                    self.identity_document_number,
                ];
                let clear = ClearFields {
                    birth_year: self.birth_year,
                    gender: Gender::parse(&self.gender),
                    citizenships: split_codes(&self.citizenships),
                    languages: split_codes(&self.languages),
                };
                Some(crypto.decrypt(&key, self.id, &columns, clear)?)
            }
        };
        Ok(Person {
            id: self.id,
            code: self.code,
            organization_id: self.organization_id,
            details,
            erased_at: self.erased_at,
            created_at: self.created_at,
        })
    }
}

pub(super) fn split_codes(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|code| !code.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Debug, FromRow)]
pub(super) struct ConsentRow {
    pub(super) id: Uuid,
    pub(super) purpose: String,
    pub(super) given: bool,
    pub(super) method: String,
    pub(super) recorded_by: String,
    pub(super) recorded_at: OffsetDateTime,
    pub(super) by_guardian: bool,
    pub(super) organization_types: String,
}

#[derive(Debug, FromRow)]
pub(super) struct DecisionRow {
    pub(super) id: Uuid,
    pub(super) stage: String,
    pub(super) deciding_organization_type: String,
    pub(super) legal_basis: String,
    pub(super) decided_at: OffsetDateTime,
    pub(super) reasons: String,
    pub(super) reasons_ciphertext: Option<Vec<u8>>,
    pub(super) legal_basis_ciphertext: Option<Vec<u8>>,
    pub(super) recorded_by: String,
    pub(super) recorded_at: OffsetDateTime,
    pub(super) deciding_organization_id: Option<Uuid>,
}

pub(super) fn corrupt(what: &str) -> HavenError {
    HavenError::internal(std::io::Error::other(format!(
        "stored screening has unknown {what}"
    )))
}

pub(super) fn assemble(
    row: ScreeningRow,
    consents: Vec<ConsentRow>,
    decisions: Vec<DecisionRow>,
) -> HavenResult<Screening> {
    let consents = consents
        .into_iter()
        .map(|row| {
            Ok(Consent {
                id: row.id,
                purpose: ConsentPurpose::parse(&row.purpose)
                    .ok_or_else(|| corrupt("consent purpose"))?,
                given: row.given,
                method: ConsentMethod::parse(&row.method)
                    .ok_or_else(|| corrupt("consent method"))?,
                recorded_by: row.recorded_by,
                recorded_at: row.recorded_at,
                by_guardian: row.by_guardian,
                organization_types: split_codes(&row.organization_types),
            })
        })
        .collect::<HavenResult<Vec<_>>>()?;
    let decisions = decisions
        .into_iter()
        .map(|row| {
            Ok(Decision {
                id: row.id,
                stage: IdentificationStage::parse(&row.stage)
                    .ok_or_else(|| corrupt("decision stage"))?,
                deciding_organization_type: DecidingOrganizationType::parse(
                    &row.deciding_organization_type,
                )
                .ok_or_else(|| corrupt("deciding organisation type"))?,
                legal_basis: row.legal_basis,
                decided_at: row.decided_at,
                reasons: row.reasons,
                recorded_by: row.recorded_by,
                recorded_at: row.recorded_at,
                deciding_organization_id: row.deciding_organization_id,
            })
        })
        .collect::<HavenResult<Vec<_>>>()?;
    Ok(Screening {
        id: row.id,
        organization_id: row.organization_id,
        screened_by: row.screened_by,
        referral_source: ReferralSource::parse(&row.referral_source)
            .ok_or_else(|| corrupt("referral source"))?,
        screened_at: row.screened_at,
        settlement: row.settlement,
        language: row.language,
        interpreter_used: row.interpreter_used,
        is_minor: row.is_minor,
        stage: IdentificationStage::parse(&row.stage).ok_or_else(|| corrupt("stage"))?,
        case_id: row.case_id,
        consents,
        decisions,
        created_at: row.created_at,
        version: row.version,
        position: row.seq,
        person_id: row.person_id,
        person_code: row.person_code,
        assessment: AssessmentParts {
            indicators: parse_part(row.indicator_answers)?,
            exploitation: parse_part(row.exploitation)?,
            risk: parse_part(row.risk)?,
        },
        re_trafficked: row.re_trafficked,
        coordinates: row.latitude.zip(row.longitude),
        // Decrypted by the caller, which holds the keys.
        guardian: None,
    })
}

/// Encrypts the notes on indicator answers; `None` when there are none.
pub(super) fn seal_notes(
    key: &SealingKey,
    screening_id: Uuid,
    answers: Option<&crate::assessment::IndicatorAnswers>,
) -> HavenResult<Option<Vec<u8>>> {
    let Some(answers) = answers.filter(|answers| !answers.notes.is_empty()) else {
        return Ok(None);
    };
    let json = serde_json::to_string(&answers.notes).map_err(HavenError::internal)?;
    key.seal(
        "screenings",
        "indicator_notes",
        screening_id.as_bytes(),
        &json,
    )
    .map(Some)
}

/// A screening as loaded, its encrypted texts (a minor's guardian, the notes on
/// indicator answers, the reasons and legal basis of each decision) still sealed. Only
/// [`Loaded::open`] turns them into plaintext, and it takes the receipt of the audit
/// entry about this screening that the operation appended: no path returns a
/// screening's texts without one.
pub(super) struct Loaded {
    pub(super) screening: Screening,
    pub(super) texts: SealedTexts,
}

/// The ciphertexts of a screening and the wrapped key that opens them (`None` once
/// the person was erased: the texts are gone for good and read as empty).
pub(super) struct SealedTexts {
    pub(super) wrapped_key: Option<Vec<u8>>,
    pub(super) guardian: Option<Vec<u8>>,
    pub(super) notes: Option<Vec<u8>>,
    pub(super) decisions: Vec<SealedDecision>,
}

/// A decision's id, reasons and legal basis, as stored.
type SealedDecision = (Uuid, Option<Vec<u8>>, Option<Vec<u8>>);

impl Loaded {
    pub(super) fn from_rows(
        mut row: ScreeningRow,
        consents: Vec<ConsentRow>,
        mut decisions: Vec<DecisionRow>,
    ) -> HavenResult<Self> {
        let texts = SealedTexts {
            wrapped_key: row.wrapped_key.take(),
            guardian: row.guardian.take(),
            notes: row.indicator_notes.take(),
            decisions: decisions
                .iter_mut()
                .map(|decision| {
                    (
                        decision.id,
                        decision.reasons_ciphertext.take(),
                        decision.legal_basis_ciphertext.take(),
                    )
                })
                .collect(),
        };
        Ok(Self {
            screening: assemble(row, consents, decisions)?,
            texts,
        })
    }

    /// The screening without its encrypted texts, for work that shows none of them
    /// (linking a case, finding duplicates).
    pub(super) fn without_texts(self) -> Screening {
        self.screening
    }

    /// The screening with its texts in the clear, under `receipt`: the audit entry
    /// about this screening appended in the operation's transaction.
    pub(super) fn open(self, crypto: &PersonCrypto, receipt: &Receipt) -> HavenResult<Screening> {
        let Self {
            mut screening,
            texts,
        } = self;
        let sealed_decisions = texts
            .decisions
            .iter()
            .any(|(_, reasons, legal_basis)| reasons.is_some() || legal_basis.is_some());
        if texts.guardian.is_none() && texts.notes.is_none() && !sealed_decisions {
            return Ok(screening);
        }
        let Some(wrapped) = texts.wrapped_key else {
            return Ok(screening);
        };
        let id = screening.id;
        let key = crypto.open(receipt, id, &wrapped)?;
        if let Some(stored) = texts.guardian {
            let json = key.open("screenings", "guardian", id.as_bytes(), &stored)?;
            screening.guardian = Some(serde_json::from_str(&json).map_err(HavenError::internal)?);
        }
        if let Some(stored) = texts.notes {
            let json = key.open("screenings", "indicator_notes", id.as_bytes(), &stored)?;
            let notes = serde_json::from_str(&json).map_err(HavenError::internal)?;
            if let Some(indicators) = screening.assessment.indicators.as_mut() {
                indicators.notes = notes;
            }
        }
        for (decision_id, reasons, legal_basis) in texts.decisions {
            let Some(decision) = screening
                .decisions
                .iter_mut()
                .find(|decision| decision.id == decision_id)
            else {
                continue;
            };
            if let Some(stored) = reasons {
                decision.reasons =
                    key.open("decisions", "reasons", decision_id.as_bytes(), &stored)?;
            }
            if let Some(stored) = legal_basis {
                decision.legal_basis =
                    key.open("decisions", "legal_basis", decision_id.as_bytes(), &stored)?;
            }
        }
        Ok(screening)
    }
}
