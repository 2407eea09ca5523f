//! Referrals of a case to a facility of another organisation, and what they disclose
//! about the person to the receiving organisation.

use std::collections::BTreeMap;

use haven_error::HavenError;
use haven_proto::referral::v1 as referral;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::enums::{ReferralDirection, ReferralStatus, Urgency};
use super::{from_timestamp, non_empty, optional_date, page_request, require_text, to_timestamp};

/// A referral of a case to a facility of another organisation. The person appears
/// only as the case's pseudonymous code.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Referral {
    /// Referral id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case referred (readable by the sending organisation only).
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// The case's pseudonymous code, e.g. `HV-2026-000123`.
    pub(crate) case_code: String,
    /// Organisation that sent it.
    #[schema(format = Uuid)]
    pub(crate) from_organization_id: String,
    /// Organisation asked to provide the service.
    #[schema(format = Uuid)]
    pub(crate) to_organization_id: String,
    /// Facility asked.
    #[schema(format = Uuid)]
    pub(crate) facility_id: String,
    /// Service type sought, e.g. `shelter`.
    pub(crate) service_type: String,
    /// What is asked of the receiving organisation.
    pub(crate) purpose: String,
    /// How soon an answer is needed.
    pub(crate) urgency: Option<Urgency>,
    /// Who sent it (subject).
    pub(crate) requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) requested_at: Option<OffsetDateTime>,
    /// The receiving organisation is to accept or decline by then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) accept_by: Option<OffsetDateTime>,
    /// The outcome is to be reported by then, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) outcome_due_on: Option<String>,
    /// Where it stands.
    pub(crate) status: Option<ReferralStatus>,
    /// Why it was declined, cancelled or revoked.
    pub(crate) status_reason: Option<String>,
    /// What came of it, once completed.
    pub(crate) outcome: Option<String>,
    /// A bed or slot of the facility is held for the person.
    pub(crate) capacity_reserved: bool,
    /// Still waiting for an answer past `accept_by`.
    pub(crate) acceptance_overdue: bool,
    /// Accepted or in progress past `outcome_due_on`.
    pub(crate) outcome_overdue: bool,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) updated_at: Option<OffsetDateTime>,
}

impl From<referral::Referral> for Referral {
    fn from(referral: referral::Referral) -> Self {
        Self {
            id: referral.id,
            case_id: referral.case_id,
            case_code: referral.case_code,
            from_organization_id: referral.from_organization_id,
            to_organization_id: referral.to_organization_id,
            facility_id: referral.facility_id,
            service_type: referral.service_type,
            purpose: referral.purpose,
            urgency: Urgency::from_proto(referral.urgency),
            requested_by: referral.requested_by,
            requested_at: from_timestamp(referral.requested_at),
            accept_by: from_timestamp(referral.accept_by),
            outcome_due_on: non_empty(referral.outcome_due_on),
            status: ReferralStatus::from_proto(referral.status),
            status_reason: non_empty(referral.status_reason),
            outcome: non_empty(referral.outcome),
            capacity_reserved: referral.capacity_reserved,
            acceptance_overdue: referral.acceptance_overdue,
            outcome_overdue: referral.outcome_overdue,
            version: referral.version,
            updated_at: from_timestamp(referral.updated_at),
        }
    }
}

/// One page of referrals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReferralPage {
    /// Referrals of this page.
    pub(crate) items: Vec<Referral>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// Body of `POST /v1/referrals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateReferral {
    /// The case to refer (of your organisation).
    pub(crate) case_id: uuid::Uuid,
    /// Facility asked (of another organisation), e.g. found with
    /// `GET /v1/facilities/search`.
    pub(crate) facility_id: uuid::Uuid,
    /// Service type sought; the facility must offer it.
    pub(crate) service_type: String,
    /// What is asked of the receiving organisation, in a few words. The receiving
    /// organisation reads it: write no personal details here; what it may know of
    /// the person it reads from the referral's disclosure.
    pub(crate) purpose: String,
    /// How soon an answer is needed.
    pub(crate) urgency: Urgency,
    /// The receiving organisation is to answer by then (RFC 3339); default by
    /// urgency: emergency 4 h, urgent 24 h, routine 72 h.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub(crate) accept_by: Option<OffsetDateTime>,
    /// The outcome is to be reported by then, `YYYY-MM-DD`; default 30 days from now.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) outcome_due_on: Option<String>,
}

impl CreateReferral {
    /// Validates the body into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::CreateReferralRequest, HavenError> {
        require_text("service_type", &self.service_type)?;
        require_text("purpose", &self.purpose)?;
        Ok(referral::CreateReferralRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            case_id: self.case_id.to_string(),
            facility_id: self.facility_id.to_string(),
            service_type: self.service_type,
            purpose: self.purpose,
            urgency: self.urgency.to_proto(),
            accept_by: self.accept_by.map(to_timestamp),
            outcome_due_on: optional_date("outcome_due_on", self.outcome_due_on)?,
        })
    }
}

/// Query of `GET /v1/referrals`: referrals sent by or to your organisation.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReferralQuery {
    /// Only those sent by (`outgoing`) or to (`incoming`) your organisation; default
    /// both.
    #[param(inline)]
    pub(crate) direction: Option<ReferralDirection>,
    /// Only referrals with this status.
    pub(crate) status: Option<ReferralStatus>,
    /// Only referrals of this case.
    pub(crate) case_id: Option<uuid::Uuid>,
    /// Only those still waiting for an answer past `accept_by`.
    pub(crate) acceptance_overdue: Option<bool>,
    /// Only those accepted or in progress past `outcome_due_on`.
    pub(crate) outcome_overdue: Option<bool>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl ReferralQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::ListReferralsRequest, HavenError> {
        Ok(referral::ListReferralsRequest {
            page: Some(page_request(self.limit, self.cursor)?),
            direction: self
                .direction
                .map(ReferralDirection::to_proto)
                .unwrap_or_default(),
            status: self
                .status
                .map(ReferralStatus::to_proto)
                .unwrap_or_default(),
            case_id: self.case_id.map(|id| id.to_string()).unwrap_or_default(),
            acceptance_overdue: self.acceptance_overdue.unwrap_or(false),
            outcome_overdue: self.outcome_overdue.unwrap_or(false),
        })
    }
}

/// An empty object, `{}`: the move needs nothing more than the `If-Match`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoDetails {}

/// Body of declining, cancelling or revoking a referral.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusReason {
    /// Why; the other organisation reads it.
    pub(crate) reason: String,
}

impl StatusReason {
    /// Validates the reason.
    pub(crate) fn into_reason(self) -> Result<String, HavenError> {
        require_text("reason", &self.reason)?;
        Ok(self.reason)
    }
}

/// Body of `POST /v1/referrals/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompleteReferral {
    /// What came of it; the sending organisation reads it.
    pub(crate) outcome: String,
}

impl CompleteReferral {
    /// Validates the outcome.
    pub(crate) fn into_outcome(self) -> Result<String, HavenError> {
        require_text("outcome", &self.outcome)?;
        Ok(self.outcome)
    }
}

/// What a referral discloses about the person to the receiving organisation: only the
/// fields its service type needs, while the referral is open and the person's consent
/// to sharing holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Disclosure {
    /// The referral.
    #[schema(format = Uuid)]
    pub(crate) referral_id: String,
    /// The case's pseudonymous code.
    pub(crate) case_code: String,
    /// The fields disclosed by name, e.g. `given_name`, `age`, `languages`,
    /// `immediate_needs`.
    pub(crate) fields: BTreeMap<String, String>,
}

impl From<referral::GetReferralDisclosureResponse> for Disclosure {
    fn from(response: referral::GetReferralDisclosureResponse) -> Self {
        Self {
            referral_id: response.referral_id,
            case_code: response.case_code,
            fields: response
                .fields
                .into_iter()
                .map(|field| (field.name, field.value))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_referral_is_checked_before_it_is_sent() {
        let body = |changes: serde_json::Value| {
            let mut body = json!({
                "case_id": uuid::Uuid::nil(), "facility_id": uuid::Uuid::nil(),
                "service_type": "shelter", "purpose": "A bed for two weeks",
                "urgency": "urgent",
            });
            for (key, value) in changes.as_object().unwrap() {
                body[key] = value.clone();
            }
            serde_json::from_value::<CreateReferral>(body).unwrap()
        };
        let sent = body(json!({"accept_by": "2026-03-01T12:00:00Z"}))
            .into_proto()
            .unwrap();
        assert_eq!(sent.urgency, referral::Urgency::Urgent as i32);
        assert_eq!(sent.accept_by.unwrap().seconds, 1_772_366_400);
        assert_eq!(sent.outcome_due_on, "");
        for (changes, field) in [
            (json!({"outcome_due_on": "2026-02-30"}), "outcome_due_on"),
            (json!({"purpose": " "}), "purpose"),
            (json!({"service_type": ""}), "service_type"),
        ] {
            let error = body(changes).into_proto().unwrap_err();
            assert_eq!(error.violations()[0].field, field);
        }
    }

    #[test]
    fn disclosed_fields_become_an_object() {
        let disclosure = Disclosure::from(referral::GetReferralDisclosureResponse {
            referral_id: "r".to_owned(),
            case_code: "HV-2026-000001".to_owned(),
            fields: vec![
                referral::DisclosedField {
                    name: "given_name".to_owned(),
                    value: "Aynur".to_owned(),
                },
                referral::DisclosedField {
                    name: "age".to_owned(),
                    value: "31".to_owned(),
                },
            ],
        });
        assert_eq!(
            serde_json::to_value(disclosure).unwrap(),
            json!({"referral_id": "r", "case_code": "HV-2026-000001",
                   "fields": {"given_name": "Aynur", "age": "31"}})
        );
    }
}
