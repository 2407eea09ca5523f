//! Screenings, consents and identification decisions.

use haven_error::HavenError;
use haven_proto::intake::v1 as intake;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
};
use super::{from_timestamp, non_empty, to_timestamp};

/// A screening of a presumed victim, with its consents and decisions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Screening {
    /// Screening id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Organisation that holds the screening.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Subject of the user who screened.
    pub(crate) screened_by: String,
    /// How the person came to the organisation.
    pub(crate) referral_source: Option<ReferralSource>,
    /// When the screening took place.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) screened_at: Option<OffsetDateTime>,
    /// Settlement where the screening took place.
    pub(crate) settlement: Option<String>,
    /// ISO 639 code of the language of the screening.
    pub(crate) language: Option<String>,
    /// Whether an interpreter was present.
    pub(crate) interpreter_used: bool,
    /// Whether the person is a minor.
    pub(crate) is_minor: bool,
    /// Current identification stage.
    pub(crate) stage: Option<IdentificationStage>,
    /// Case opened for this screening, once the person is identified and consents.
    #[schema(format = Uuid)]
    pub(crate) case_id: Option<String>,
    /// Consents recorded, oldest first.
    pub(crate) consents: Vec<Consent>,
    /// Identification decisions recorded, oldest first.
    pub(crate) decisions: Vec<Decision>,
    /// When the record was created.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) created_at: Option<OffsetDateTime>,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
    /// The screened person (details only through `GET /v1/persons/{id}`).
    #[schema(format = Uuid)]
    pub(crate) person_id: Option<String>,
    /// The person's pseudonymous code.
    pub(crate) person_code: Option<String>,
    /// Answers to the indicator set.
    pub(crate) indicators: Option<super::assessment::IndicatorAssessment>,
    /// Exploitation details.
    pub(crate) exploitation: Option<super::assessment::ExploitationDetails>,
    /// Risk assessment.
    pub(crate) risk: Option<super::assessment::RiskAssessment>,
    /// Confirmed as a person trafficked again.
    pub(crate) re_trafficked: bool,
    /// Where the screening took place.
    pub(crate) coordinates: Option<Coordinates>,
    /// A minor's guardian or representative.
    pub(crate) guardian: Option<Guardian>,
}

/// A place, WGS 84.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Coordinates {
    /// Latitude, -90 to 90.
    pub(crate) latitude: f64,
    /// Longitude, -180 to 180.
    pub(crate) longitude: f64,
}

/// The guardian or legal representative of a minor (stored encrypted).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Guardian {
    /// Name.
    pub(crate) name: String,
    /// Relationship code, e.g. `parent`, `legal_guardian`.
    pub(crate) relationship: String,
    /// Contact.
    #[serde(default)]
    pub(crate) contact: Option<String>,
}

// Personal data never reaches a log line through `{:?}`.
impl std::fmt::Debug for Guardian {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Guardian([redacted])")
    }
}

impl From<Guardian> for intake::Guardian {
    fn from(guardian: Guardian) -> Self {
        Self {
            name: guardian.name,
            relationship: guardian.relationship,
            contact: guardian.contact.unwrap_or_default(),
        }
    }
}

/// A consent given or refused by the person.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Consent {
    /// Consent id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// What the consent covers.
    pub(crate) purpose: Option<ConsentPurpose>,
    /// Whether consent was given (false: refused or withdrawn).
    pub(crate) given: bool,
    /// How it was given.
    pub(crate) method: Option<ConsentMethod>,
    /// Subject of the user who recorded it.
    pub(crate) recorded_by: String,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) recorded_at: Option<OffsetDateTime>,
    /// Given or refused by a minor's guardian.
    pub(crate) by_guardian: bool,
    /// Data sharing only: the kinds of organisation it covers (empty = any).
    pub(crate) organization_types: Vec<String>,
}

/// An identification decision.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Decision {
    /// Decision id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Stage decided.
    pub(crate) stage: Option<IdentificationStage>,
    /// Kind of organisation that decided.
    pub(crate) deciding_organization_type: Option<DecidingOrganizationType>,
    /// Legal basis of the decision.
    pub(crate) legal_basis: String,
    /// When the decision was taken.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) decided_at: Option<OffsetDateTime>,
    /// Reasons given.
    pub(crate) reasons: Option<String>,
    /// Subject of the user who recorded it.
    pub(crate) recorded_by: String,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) recorded_at: Option<OffsetDateTime>,
    /// The deciding organisation, when it is in the directory.
    #[schema(format = Uuid)]
    pub(crate) deciding_organization_id: Option<String>,
}

/// One page of screenings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScreeningPage {
    /// Screenings of this page.
    pub(crate) items: Vec<Screening>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl From<intake::Screening> for Screening {
    fn from(screening: intake::Screening) -> Self {
        Self {
            id: screening.id,
            organization_id: screening.organization_id,
            screened_by: screening.screened_by,
            referral_source: ReferralSource::from_proto(screening.referral_source),
            screened_at: from_timestamp(screening.screened_at),
            settlement: non_empty(screening.settlement),
            language: non_empty(screening.language),
            interpreter_used: screening.interpreter_used,
            is_minor: screening.is_minor,
            stage: IdentificationStage::from_proto(screening.stage),
            case_id: non_empty(screening.case_id),
            consents: screening.consents.into_iter().map(Consent::from).collect(),
            decisions: screening
                .decisions
                .into_iter()
                .map(Decision::from)
                .collect(),
            created_at: from_timestamp(screening.created_at),
            version: screening.version,
            person_id: non_empty(screening.person_id),
            person_code: non_empty(screening.person_code),
            indicators: screening.indicators.map(Into::into),
            exploitation: screening.exploitation.map(Into::into),
            risk: screening
                .risk
                .and_then(super::assessment::RiskAssessment::from_proto),
            re_trafficked: screening.re_trafficked,
            coordinates: screening.coordinates.map(|place| Coordinates {
                latitude: place.latitude,
                longitude: place.longitude,
            }),
            guardian: screening.guardian.map(|guardian| Guardian {
                name: guardian.name,
                relationship: guardian.relationship,
                contact: non_empty(guardian.contact),
            }),
        }
    }
}

impl From<intake::Consent> for Consent {
    fn from(consent: intake::Consent) -> Self {
        Self {
            id: consent.id,
            purpose: ConsentPurpose::from_proto(consent.purpose),
            given: consent.given,
            method: ConsentMethod::from_proto(consent.method),
            recorded_by: consent.recorded_by,
            recorded_at: from_timestamp(consent.recorded_at),
            by_guardian: consent.by_guardian,
            organization_types: consent.organization_types,
        }
    }
}

impl From<intake::Decision> for Decision {
    fn from(decision: intake::Decision) -> Self {
        Self {
            id: decision.id,
            stage: IdentificationStage::from_proto(decision.stage),
            deciding_organization_type: DecidingOrganizationType::from_proto(
                decision.deciding_organization_type,
            ),
            legal_basis: decision.legal_basis,
            decided_at: from_timestamp(decision.decided_at),
            reasons: non_empty(decision.reasons),
            recorded_by: decision.recorded_by,
            recorded_at: from_timestamp(decision.recorded_at),
            deciding_organization_id: non_empty(decision.deciding_organization_id),
        }
    }
}

/// Body of `POST /v1/screenings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateScreening {
    /// How the person came to the organisation.
    pub(crate) referral_source: ReferralSource,
    /// When the screening took place; defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) screened_at: Option<OffsetDateTime>,
    /// Settlement where the screening took place: a settlement of the gazetteer
    /// (`GET /v1/settlements`; any spelling of its name, stored as the gazetteer's
    /// name), or `other` with `coordinates`.
    #[serde(default)]
    pub(crate) settlement: Option<String>,
    /// ISO 639 code of the language of the screening.
    #[serde(default)]
    pub(crate) language: Option<String>,
    /// Whether an interpreter was present (default false).
    #[serde(default)]
    pub(crate) interpreter_used: Option<bool>,
    /// Whether the person is a minor (default false).
    #[serde(default)]
    pub(crate) is_minor: Option<bool>,
    /// The screened person's details; stored only encrypted.
    #[serde(default)]
    pub(crate) person: Option<super::person::PersonDetails>,
    /// Answers to the indicator set (default the newest version).
    #[serde(default)]
    pub(crate) indicators: Option<super::assessment::IndicatorAssessment>,
    /// Exploitation details, as far as known.
    #[serde(default)]
    pub(crate) exploitation: Option<super::assessment::ExploitationDetails>,
    /// Risk assessment.
    #[serde(default)]
    pub(crate) risk: Option<super::assessment::RiskAssessment>,
    /// Where the screening took place.
    #[serde(default)]
    pub(crate) coordinates: Option<Coordinates>,
    /// The guardian or representative; required when `is_minor` is true.
    #[serde(default)]
    pub(crate) guardian: Option<Guardian>,
}

impl From<CreateScreening> for intake::CreateScreeningRequest {
    fn from(body: CreateScreening) -> Self {
        Self {
            referral_source: body.referral_source.to_proto(),
            screened_at: body.screened_at.map(to_timestamp),
            settlement: body.settlement.unwrap_or_default(),
            language: body.language.unwrap_or_default(),
            interpreter_used: body.interpreter_used.unwrap_or(false),
            is_minor: body.is_minor.unwrap_or(false),
            person: body.person.map(Into::into),
            indicators: body.indicators.map(Into::into),
            exploitation: body.exploitation.map(Into::into),
            risk: body.risk.map(Into::into),
            coordinates: body.coordinates.map(|place| intake::Coordinates {
                latitude: place.latitude,
                longitude: place.longitude,
            }),
            guardian: body.guardian.map(Into::into),
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
        }
    }
}

/// Body of `POST /v1/screenings/{id}/consents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordConsent {
    /// What the consent covers.
    pub(crate) purpose: ConsentPurpose,
    /// Whether consent was given (false records a refusal or withdrawal).
    pub(crate) given: bool,
    /// How it was given.
    pub(crate) method: ConsentMethod,
    /// Given or refused by a minor's guardian (required for minors).
    #[serde(default)]
    pub(crate) by_guardian: bool,
    /// Data sharing only: limit to these kinds of organisation (`government`, `ngo`,
    /// `international_organization`, `private`, `other`); empty = any.
    #[serde(default)]
    pub(crate) organization_types: Vec<String>,
}

impl RecordConsent {
    /// The gRPC request for screening `screening_id`.
    pub(crate) fn into_proto(self, screening_id: uuid::Uuid) -> intake::RecordConsentRequest {
        intake::RecordConsentRequest {
            screening_id: screening_id.to_string(),
            purpose: self.purpose.to_proto(),
            given: self.given,
            method: self.method.to_proto(),
            by_guardian: self.by_guardian,
            organization_types: self.organization_types,
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
        }
    }
}

/// Body of `POST /v1/screenings/{id}/decisions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordDecision {
    /// Stage decided.
    pub(crate) stage: IdentificationStage,
    /// Kind of organisation that decided.
    pub(crate) deciding_organization_type: DecidingOrganizationType,
    /// Legal basis of the decision.
    pub(crate) legal_basis: String,
    /// When the decision was taken; defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) decided_at: Option<OffsetDateTime>,
    /// Reasons given (stored encrypted).
    #[serde(default)]
    pub(crate) reasons: Option<String>,
    /// The deciding organisation, when it is in the directory.
    #[serde(default)]
    pub(crate) deciding_organization_id: Option<uuid::Uuid>,
}

impl RecordDecision {
    /// The gRPC request for screening `screening_id`; intake checks its fields.
    pub(crate) fn into_proto(self, screening_id: uuid::Uuid) -> intake::RecordDecisionRequest {
        intake::RecordDecisionRequest {
            screening_id: screening_id.to_string(),
            stage: self.stage.to_proto(),
            deciding_organization_type: self.deciding_organization_type.to_proto(),
            legal_basis: self.legal_basis,
            decided_at: self.decided_at.map(to_timestamp),
            reasons: self.reasons.unwrap_or_default(),
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            deciding_organization_id: self
                .deciding_organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_proto_strings_become_null_and_enums_their_rest_names() {
        let screening = Screening::from(intake::Screening {
            id: "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e".into(),
            referral_source: intake::ReferralSource::Hotline as i32,
            stage: intake::IdentificationStage::ReasonableGroundsPositive as i32,
            screened_at: Some(prost_types::Timestamp {
                seconds: 1_780_000_000,
                nanos: 0,
            }),
            version: 3,
            ..Default::default()
        });
        let json = serde_json::to_value(&screening).unwrap();
        assert_eq!(json["referral_source"], "hotline");
        assert_eq!(json["stage"], "reasonable_grounds_positive");
        assert_eq!(json["case_id"], serde_json::Value::Null);
        assert_eq!(json["settlement"], serde_json::Value::Null);
        assert_eq!(json["screened_at"], "2026-05-28T20:26:40Z");
        assert_eq!(json["consents"], serde_json::json!([]));
        assert_eq!(json["version"], 3);
    }

    #[test]
    fn a_create_body_becomes_the_grpc_request() {
        let body: CreateScreening = serde_json::from_value(serde_json::json!({
            "referral_source": "border_or_consular",
            "screened_at": "2026-01-02T03:04:05.5+01:00",
            "is_minor": true
        }))
        .unwrap();
        let request = intake::CreateScreeningRequest::from(body);
        assert_eq!(
            request.referral_source,
            intake::ReferralSource::BorderOrConsular as i32
        );
        let screened_at = request.screened_at.unwrap();
        assert_eq!(screened_at.seconds, 1_767_319_445);
        assert_eq!(screened_at.nanos, 500_000_000);
        assert!(request.is_minor);
        assert!(!request.interpreter_used);
    }
}

/// Query of `GET /v1/screenings`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScreeningQuery {
    /// Only screenings at this identification stage.
    pub(crate) stage: Option<IdentificationStage>,
    /// Only screenings that came this way.
    pub(crate) referral_source: Option<ReferralSource>,
    /// Screened at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) screened_from: Option<OffsetDateTime>,
    /// Screened before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) screened_before: Option<OffsetDateTime>,
    /// Only screenings with a statutory clock past due.
    pub(crate) overdue_clock: Option<bool>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl ScreeningQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<intake::ListScreeningsRequest, HavenError> {
        Ok(intake::ListScreeningsRequest {
            page: Some(super::page_request(self.limit, self.cursor)?),
            stage: self
                .stage
                .map(IdentificationStage::to_proto)
                .unwrap_or_default(),
            referral_source: self
                .referral_source
                .map(ReferralSource::to_proto)
                .unwrap_or_default(),
            screened_from: self.screened_from.map(to_timestamp),
            screened_before: self.screened_before.map(to_timestamp),
            overdue_clock: self.overdue_clock.unwrap_or(false),
        })
    }
}
