//! The gRPC face of the intake service: validation at the edge, then the store.

use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::grpc::principal;
use haven_auth::{Action, Scope};

use crate::reach::Reach;
use haven_error::fields::parse_id;
use haven_error::{HavenError, HavenResult};
use haven_geo::Gazetteer;
use haven_proto::common::v1::PageResponse;
use haven_proto::intake::v1 as pb;
use haven_proto::intake::v1::intake_service_server::IntakeService;
use haven_storage::cursor;

use crate::assessment::{AssessmentParts, Exploitation, IndicatorAnswers, Risk};
use crate::cases::{CaseOpener, open_if_due};
use crate::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
    Screening,
};
use crate::persons::PersonDetails;
use crate::store::{
    IdempotencyKey, NewConsent, NewDecision, NewScreening, ScreeningFilter, ScreeningStore,
};
use haven_proto::from_timestamp;

/// Tolerated clock difference for times given by clients.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Implements `haven.intake.v1.IntakeService`.
#[derive(Debug, Clone)]
pub struct IntakeApi {
    store: Arc<dyn ScreeningStore>,
    cases: CaseOpener,
    settings: Arc<haven_config::IntakeSettings>,
    gazetteer: Arc<Gazetteer>,
}

impl IntakeApi {
    /// The API over a store, opening cases with `cases`, with the deployment's
    /// statutory clocks and local exploitation categories from `settings`, and the
    /// settlements a screening may name from `gazetteer`.
    pub fn new(
        store: Arc<dyn ScreeningStore>,
        cases: CaseOpener,
        settings: haven_config::IntakeSettings,
        gazetteer: Gazetteer,
    ) -> Self {
        Self {
            store,
            cases,
            settings: Arc::new(settings),
            gazetteer: Arc::new(gazetteer),
        }
    }
}

/// Reads a required protobuf enum field.
fn required<P, D>(field: &str, raw: i32, from_proto: impl Fn(P) -> Option<D>) -> HavenResult<D>
where
    P: TryFrom<i32>,
{
    P::try_from(raw).ok().and_then(from_proto).ok_or_else(|| {
        HavenError::invalid_field(field, "is required and must be one of the listed values")
    })
}

fn text(field: &str, value: String, max_chars: usize) -> HavenResult<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max_chars {
        return Err(HavenError::invalid_field(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(HavenError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

fn past_time(field: &str, value: Option<prost_types::Timestamp>) -> HavenResult<OffsetDateTime> {
    let now = OffsetDateTime::now_utc();
    let Some(value) = value else { return Ok(now) };
    let at = from_timestamp(&value)
        .ok_or_else(|| HavenError::invalid_field(field, "is not a valid time"))?;
    if at > now + CLOCK_SKEW {
        return Err(HavenError::invalid_field(
            field,
            "must not be in the future",
        ));
    }
    Ok(at)
}

fn language(value: String) -> HavenResult<String> {
    let value = value.trim().to_ascii_lowercase();
    let valid = value.is_empty()
        || ((2..=3).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_lowercase()));
    if !valid {
        return Err(HavenError::invalid_field(
            "language",
            "must be an ISO 639 code such as `az` or `rus`",
        ));
    }
    Ok(value)
}

/// What a screening stores for the `settlement` a client typed: the gazetteer's name
/// of the settlement (any spelling finds it), `other` for a place outside the
/// gazetteer (coordinates required), or nothing. Typed names are never stored.
fn settlement(
    gazetteer: &Gazetteer,
    typed: &str,
    coordinates: Option<(f64, f64)>,
) -> HavenResult<String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(String::new());
    }
    if typed.eq_ignore_ascii_case(OTHER_SETTLEMENT) {
        if coordinates.is_none() {
            return Err(HavenError::invalid_field(
                "settlement",
                "`other` needs the place's coordinates",
            ));
        }
        return Ok(OTHER_SETTLEMENT.to_owned());
    }
    gazetteer
        .find(typed)
        .map(|found| found.name.clone())
        .ok_or_else(|| {
            HavenError::invalid_field(
                "settlement",
                "is not a settlement of the gazetteer (GET /v1/settlements lists them, any spelling of a name works); \
                 for another place give `other` with coordinates",
            )
        })
}

/// The settlement of a screening that took place outside the gazetteer.
pub const OTHER_SETTLEMENT: &str = "other";

fn audit_context<T>(request: &Request<T>, action: Action) -> HavenResult<AuditContext> {
    AuditContext::from_request(request, action)
}

impl IntakeApi {
    /// Validates the assessment parts of a request against the indicator set they
    /// name and the deployment's categories.
    async fn assessment(
        &self,
        indicators: Option<pb::IndicatorAssessment>,
        exploitation: Option<pb::ExploitationDetails>,
        risk: Option<pb::RiskAssessment>,
    ) -> HavenResult<AssessmentParts> {
        let indicators = match indicators {
            None => None,
            Some(assessment) => {
                let version = match assessment.indicator_set_version {
                    0 => None,
                    version => Some(i32::try_from(version).map_err(|_| {
                        HavenError::invalid_field(
                            "indicators.indicator_set_version",
                            "no such version",
                        )
                    })?),
                };
                let set = self
                    .store
                    .get_indicator_set(version)
                    .await?
                    .ok_or_else(|| {
                        HavenError::invalid_field(
                            "indicators.indicator_set_version",
                            "no such indicator set version",
                        )
                    })?;
                Some(IndicatorAnswers::from_proto(assessment, &set)?)
            }
        };
        Ok(AssessmentParts {
            indicators,
            exploitation: exploitation
                .map(|details| {
                    Exploitation::from_proto(details, &self.settings.local_exploitation_categories)
                })
                .transpose()?,
            risk: risk.map(Risk::from_proto).transpose()?,
        })
    }
}

/// An idempotency key with the hash of the request it came with (the key already taken
/// out of the message). `kind` keeps a create and a decision from sharing a hash.
fn idempotency_key<M: prost::Message>(
    kind: &str,
    key: String,
    message: &M,
) -> HavenResult<Option<IdempotencyKey>> {
    IdempotencyKey::from_request("idempotency_key", kind, &key, &message.encode_to_vec())
}

fn optional_id(field: &str, value: &str) -> HavenResult<Option<Uuid>> {
    match value {
        "" => Ok(None),
        value => parse_id(field, value).map(Some),
    }
}

/// Kinds of organisation a data-sharing consent can be limited to.
const ORGANIZATION_TYPES: [&str; 5] = [
    "government",
    "ngo",
    "international_organization",
    "private",
    "other",
];

fn coordinates(value: pb::Coordinates) -> HavenResult<(f64, f64)> {
    let valid =
        (-90.0..=90.0).contains(&value.latitude) && (-180.0..=180.0).contains(&value.longitude);
    if !valid {
        return Err(HavenError::invalid_field(
            "coordinates",
            "latitude -90..90 and longitude -180..180",
        ));
    }
    Ok((value.latitude, value.longitude))
}

fn guardian(value: pb::Guardian) -> HavenResult<crate::domain::Guardian> {
    let name = text("guardian.name", value.name, 200)?;
    if name.is_empty() {
        return Err(HavenError::invalid_field("guardian.name", "is required"));
    }
    let relationship = text("guardian.relationship", value.relationship, 64)?;
    if !relationship
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'_')
        || relationship.is_empty()
    {
        return Err(HavenError::invalid_field(
            "guardian.relationship",
            "must be a code such as parent or legal_guardian",
        ));
    }
    Ok(crate::domain::Guardian {
        name,
        relationship,
        contact: text("guardian.contact", value.contact, 100)?,
    })
}

fn reply(screening: &Screening) -> Option<pb::Screening> {
    Some(screening.to_proto())
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_screening(
        &self,
        request: Request<pb::CreateScreeningRequest>,
    ) -> Result<Response<pb::CreateScreeningResponse>, Status> {
        let context = audit_context(&request, Action::ScreeningCreate)?;
        let caller = context.principal.clone();
        let mut message = request.into_inner();
        let key = std::mem::take(&mut message.idempotency_key);
        let once = idempotency_key("screening.create", key, &message)?;
        let person = message.person.map(PersonDetails::from_proto).transpose()?;
        let assessment = self
            .assessment(message.indicators, message.exploitation, message.risk)
            .await?;
        let coordinates = message.coordinates.map(coordinates).transpose()?;
        let new = NewScreening {
            organization_id: caller.organization_id,
            screened_by: caller.subject.clone(),
            referral_source: required(
                "referral_source",
                message.referral_source,
                ReferralSource::from_proto,
            )?,
            screened_at: past_time("screened_at", message.screened_at)?,
            settlement: settlement(&self.gazetteer, &message.settlement, coordinates)?,
            language: language(message.language)?,
            interpreter_used: message.interpreter_used,
            is_minor: message.is_minor,
            assessment,
            coordinates,
            guardian: message.guardian.map(guardian).transpose()?,
        };
        if new.is_minor && new.guardian.is_none() {
            return Err(HavenError::invalid_field(
                "guardian",
                "is required when the person is a minor",
            )
            .into());
        }
        let (screening, replayed) = self
            .store
            .create_screening_once(&context, new, person, once)
            .await?;
        Ok(Response::new(pb::CreateScreeningResponse {
            replayed,
            screening: reply(&screening),
        }))
    }

    async fn get_screening(
        &self,
        request: Request<pb::GetScreeningRequest>,
    ) -> Result<Response<pb::GetScreeningResponse>, Status> {
        let context = audit_context(&request, Action::ScreeningRead)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let screening = self
            .store
            .get_screening(&context, Reach::of(&context.principal), id)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        Ok(Response::new(pb::GetScreeningResponse {
            screening: reply(&screening),
        }))
    }

    async fn list_screenings(
        &self,
        request: Request<pb::ListScreeningsRequest>,
    ) -> Result<Response<pb::ListScreeningsResponse>, Status> {
        let context = audit_context(&request, Action::ScreeningRead)?;
        let message = request.into_inner();
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = cursor::decode(&page.cursor)?;
        let optional_enum = |field: &str, raw: i32| -> HavenResult<Option<i32>> {
            match raw {
                0 => Ok(None),
                raw if raw > 0 => Ok(Some(raw)),
                _ => Err(HavenError::invalid_field(field, "unknown value")),
            }
        };
        let stage = optional_enum("stage", message.stage)?
            .map(|raw| required("stage", raw, IdentificationStage::from_proto))
            .transpose()?;
        let referral_source = optional_enum("referral_source", message.referral_source)?
            .map(|raw| required("referral_source", raw, ReferralSource::from_proto))
            .transpose()?;
        let time = |field: &str,
                    value: Option<prost_types::Timestamp>|
         -> HavenResult<Option<OffsetDateTime>> {
            value
                .map(|value| {
                    from_timestamp(&value)
                        .ok_or_else(|| HavenError::invalid_field(field, "is not a valid time"))
                })
                .transpose()
        };
        let filter = ScreeningFilter {
            stage,
            referral_source,
            screened_from: time("screened_from", message.screened_from)?,
            screened_before: time("screened_before", message.screened_before)?,
            overdue_clock_at: message.overdue_clock.then(OffsetDateTime::now_utc),
        };
        let screenings = self
            .store
            .list_screenings(
                &context,
                Reach::of(&context.principal),
                &filter,
                after,
                limit,
            )
            .await?;
        let next_cursor = if screenings.len() == limit as usize {
            screenings
                .last()
                .map(|screening| cursor::encode(screening.position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListScreeningsResponse {
            screenings: screenings.iter().map(Screening::to_proto).collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::RecordConsentResponse>, Status> {
        let context = audit_context(&request, Action::ConsentRecord)?;
        let caller = context.principal.clone();
        let mut message = request.into_inner();
        let key = std::mem::take(&mut message.idempotency_key);
        let once = idempotency_key("consent.record", key, &message)?;
        let id = parse_id("screening_id", &message.screening_id)?;
        let purpose = required("purpose", message.purpose, ConsentPurpose::from_proto)?;
        if !message.organization_types.is_empty() && purpose != ConsentPurpose::DataSharing {
            return Err(HavenError::invalid_field(
                "organization_types",
                "only limits a data-sharing consent",
            )
            .into());
        }
        for kind in &message.organization_types {
            if !ORGANIZATION_TYPES.contains(&kind.as_str()) {
                return Err(HavenError::invalid_field(
                    "organization_types",
                    "must be government, ngo, international_organization, private or other",
                )
                .into());
            }
        }
        let screening = self
            .store
            .get_screening(&context, Reach::of(&caller), id)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        // A minor consents through their guardian or representative.
        if screening.is_minor && !message.by_guardian {
            return Err(HavenError::invalid_field(
                "by_guardian",
                "a minor's consent is given by their guardian",
            )
            .into());
        }
        let consent = NewConsent {
            purpose,
            given: message.given,
            method: required("method", message.method, ConsentMethod::from_proto)?,
            recorded_by: caller.subject.clone(),
            by_guardian: message.by_guardian,
            organization_types: message.organization_types,
            once,
        };
        let screening = self
            .store
            .record_consent(&context, Reach::of(&caller), id, consent)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        let screening = open_if_due(self.store.as_ref(), &self.cases, screening).await;
        Ok(Response::new(pb::RecordConsentResponse {
            screening: reply(&screening),
        }))
    }

    async fn record_decision(
        &self,
        request: Request<pb::RecordDecisionRequest>,
    ) -> Result<Response<pb::RecordDecisionResponse>, Status> {
        let context = audit_context(&request, Action::DecisionRecord)?;
        let caller = context.principal.clone();
        let mut message = request.into_inner();
        let key = std::mem::take(&mut message.idempotency_key);
        let once = idempotency_key("decision.record", key, &message)?;
        let id = parse_id("screening_id", &message.screening_id)?;
        let stage = required("stage", message.stage, IdentificationStage::from_proto)?;
        if stage == IdentificationStage::Screened {
            return Err(
                HavenError::invalid_field("stage", "a decision must move past `screened`").into(),
            );
        }
        let legal_basis = text("legal_basis", message.legal_basis, 500)?;
        if legal_basis.is_empty() {
            return Err(HavenError::invalid_field("legal_basis", "must not be empty").into());
        }
        let decision = NewDecision {
            stage,
            deciding_organization_type: required(
                "deciding_organization_type",
                message.deciding_organization_type,
                DecidingOrganizationType::from_proto,
            )?,
            legal_basis,
            decided_at: past_time("decided_at", message.decided_at)?,
            reasons: text("reasons", message.reasons, 4000)?,
            recorded_by: caller.subject.clone(),
            deciding_organization_id: optional_id(
                "deciding_organization_id",
                &message.deciding_organization_id,
            )?,
            once,
        };
        let screening = self
            .store
            .record_decision(
                &context,
                Reach::of(&caller),
                id,
                decision,
                &self.settings.clocks,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        let screening = open_if_due(self.store.as_ref(), &self.cases, screening).await;
        Ok(Response::new(pb::RecordDecisionResponse {
            screening: reply(&screening),
        }))
    }

    async fn get_person(
        &self,
        request: Request<pb::GetPersonRequest>,
    ) -> Result<Response<pb::GetPersonResponse>, Status> {
        let context = audit_context(&request, Action::PersonRead)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let person = self
            .store
            .get_person(&context, Reach::of(&context.principal), id)
            .await?
            .ok_or_else(|| HavenError::not_found("person"))?;
        Ok(Response::new(pb::GetPersonResponse {
            person: Some(person.to_proto()),
        }))
    }

    async fn erase_person(
        &self,
        request: Request<pb::ErasePersonRequest>,
    ) -> Result<Response<pb::ErasePersonResponse>, Status> {
        let context = audit_context(&request, Action::PersonErase)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let reason = text("reason", message.reason, 500)?;
        if reason.is_empty() {
            return Err(HavenError::invalid_field("reason", "is required").into());
        }
        let person = self
            .store
            .erase_person(&context, Reach::of(&context.principal), id, &reason)
            .await?
            .ok_or_else(|| HavenError::not_found("person"))?;
        Ok(Response::new(pb::ErasePersonResponse {
            person: Some(person.to_proto()),
        }))
    }

    async fn find_matches(
        &self,
        request: Request<pb::FindMatchesRequest>,
    ) -> Result<Response<pb::FindMatchesResponse>, Status> {
        let context = audit_context(&request, Action::DuplicateSearch)?;
        crate::search_limit::check(self.store.as_ref(), &context.principal.subject).await?;
        let id = parse_id("screening_id", &request.get_ref().screening_id)?;
        let matches = self
            .store
            .find_matches(&context, Reach::of(&context.principal), id)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        Ok(Response::new(pb::FindMatchesResponse {
            matches: matches
                .into_iter()
                .map(|found| pb::PersonMatch {
                    // Another organisation's record: only its holder is disclosed.
                    person_id: if found.restricted {
                        String::new()
                    } else {
                        found.person_id.to_string()
                    },
                    person_code: found.person_code,
                    kind: match found.kind {
                        haven_crypto::BlindIndexKind::FullName => pb::MatchKind::FullName,
                        _ => pb::MatchKind::NamePart,
                    }
                    .into(),
                    screening_ids: found.screening_ids.iter().map(Uuid::to_string).collect(),
                    organization_id: found.organization_id.to_string(),
                    restricted: found.restricted,
                })
                .collect(),
        }))
    }

    async fn list_person_access(
        &self,
        request: Request<pb::ListPersonAccessRequest>,
    ) -> Result<Response<pb::ListPersonAccessResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::PersonAccessLogRead)?;
        let message = request.into_inner();
        let id = parse_id("person_id", &message.person_id)?;
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = cursor::decode(&page.cursor)?.unwrap_or(0);
        let entries = self
            .store
            .person_access(Reach::of(&caller), id, after, limit)
            .await?
            .ok_or_else(|| HavenError::not_found("person"))?;
        let next_cursor = if entries.len() == limit as usize {
            entries
                .last()
                .map(|entry| cursor::encode(entry.sequence))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPersonAccessResponse {
            entries: entries
                .into_iter()
                .map(|entry| pb::AccessEntry {
                    sequence: u64::try_from(entry.sequence).unwrap_or_default(),
                    occurred_at: Some(haven_proto::timestamp(entry.occurred_at)),
                    actor: entry.actor,
                    organization_id: entry.organization_id.to_string(),
                    action: entry.action,
                    purpose: entry.purpose,
                    request_id: entry.request_id,
                })
                .collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn update_screening(
        &self,
        request: Request<pb::UpdateScreeningRequest>,
    ) -> Result<Response<pb::UpdateScreeningResponse>, Status> {
        let context = audit_context(&request, Action::ScreeningUpdate)?;
        let caller = context.principal.clone();
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        if message.expected_version == 0 {
            return Err(HavenError::new(
                haven_error::ErrorCode::PreconditionRequired,
                "expected_version (If-Match) is required to update a screening",
            )
            .into());
        }
        let expected_version = i64::try_from(message.expected_version)
            .map_err(|_| HavenError::invalid_field("expected_version", "is too large"))?;
        let parts = self
            .assessment(message.indicators, message.exploitation, message.risk)
            .await?;
        if parts == AssessmentParts::default() {
            return Err(HavenError::invalid_field(
                "indicators",
                "give at least one of indicators, exploitation, risk",
            )
            .into());
        }
        let screening = self
            .store
            .update_screening(&context, Reach::of(&caller), id, expected_version, parts)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        Ok(Response::new(pb::UpdateScreeningResponse {
            screening: reply(&screening),
        }))
    }

    async fn confirm_match(
        &self,
        request: Request<pb::ConfirmMatchRequest>,
    ) -> Result<Response<pb::ConfirmMatchResponse>, Status> {
        let context = audit_context(&request, Action::DuplicateSearch)?;
        let message = request.into_inner();
        let screening_id = parse_id("screening_id", &message.screening_id)?;
        let other = parse_id("person_id", &message.person_id)?;
        let screening = self
            .store
            .confirm_match(&context, Reach::of(&context.principal), screening_id, other)
            .await?
            .ok_or_else(|| HavenError::not_found("screening or person"))?;
        Ok(Response::new(pb::ConfirmMatchResponse {
            screening: reply(&screening),
        }))
    }
    async fn share_for_referral(
        &self,
        request: Request<pb::ShareForReferralRequest>,
    ) -> Result<Response<pb::ShareForReferralResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::PersonShareForReferral)?;
        let message = request.into_inner();
        let id = parse_id("screening_id", &message.screening_id)?;
        let organization_type = message.organization_type.trim();
        if !ORGANIZATION_TYPES.contains(&organization_type) {
            return Err(HavenError::invalid_field(
                "organization_type",
                "must be government, ngo, international_organization, private or other",
            )
            .into());
        }
        if let Some(field) = message
            .fields
            .iter()
            .find(|field| !haven_config::DISCLOSABLE_FIELDS.contains(&field.as_str()))
        {
            return Err(HavenError::invalid_field(
                "fields",
                format!("`{field}` is not a field that can be shared"),
            )
            .into());
        }
        let screening = self
            .store
            .get_screening(&context, Reach::from(Scope::All), id)
            .await?
            .ok_or_else(|| HavenError::not_found("screening"))?;
        // Consent is checked now, against the newest data-sharing record.
        sharing_allowed(&screening, organization_type)?;
        if message.fields.is_empty() {
            return Ok(Response::new(pb::ShareForReferralResponse {
                fields: Vec::new(),
            }));
        }
        let details = match screening.person_id {
            Some(person_id) => self
                .store
                .get_person(&context, Reach::from(Scope::All), person_id)
                .await?
                .and_then(|person| person.details),
            None => None,
        };
        let fields = message
            .fields
            .iter()
            .filter_map(|field| {
                shared_value(field, &screening, details.as_ref()).map(|value| pb::SharedField {
                    name: field.clone(),
                    value,
                })
            })
            .collect();
        Ok(Response::new(pb::ShareForReferralResponse { fields }))
    }
}

/// Whether the newest data-sharing consent allows sharing with `organization_type`;
/// the error says why not.
fn sharing_allowed(screening: &Screening, organization_type: &str) -> HavenResult<()> {
    let conflict = |message: String| HavenError::new(haven_error::ErrorCode::Conflict, message);
    let consent = screening
        .consents
        .iter()
        .rev()
        .find(|consent| consent.purpose == ConsentPurpose::DataSharing);
    match consent {
        None => Err(conflict(
            "the person has not consented to sharing their data: record a data-sharing consent first".to_owned(),
        )),
        Some(consent) if !consent.given => Err(conflict(
            "the person refused or withdrew consent to sharing their data".to_owned(),
        )),
        Some(consent)
            if !consent.organization_types.is_empty()
                && !consent.organization_types.iter().any(|kind| kind == organization_type) =>
        {
            Err(conflict(format!(
                "the person's consent to sharing covers only {} organisations, not {organization_type}",
                consent.organization_types.join(", ")
            )))
        }
        Some(_) => Ok(()),
    }
}

/// One shared field's value, if known.
fn shared_value(
    field: &str,
    screening: &Screening,
    details: Option<&PersonDetails>,
) -> Option<String> {
    let non_empty = |value: String| (!value.is_empty()).then_some(value);
    let risk = screening.assessment.risk.as_ref();
    match field {
        "language" => non_empty(screening.language.clone()),
        "risk_level" => risk.map(|risk| risk.level.clone()),
        "immediate_needs" => risk.and_then(|risk| non_empty(risk.immediate_needs.join(","))),
        "exploitation_types" => screening
            .assessment
            .exploitation
            .as_ref()
            .and_then(|exploitation| non_empty(exploitation.types.join(","))),
        _ => {
            let details = details?;
            match field {
                "given_name" => non_empty(details.given_name.clone()),
                "family_name" => non_empty(details.family_name.clone()),
                "patronymic" => non_empty(details.patronymic.clone()),
                "gender" => details.gender.map(|gender| gender.as_str().to_owned()),
                "birth_date" => details.birth_date.map(|date| date.to_string()),
                "age" => {
                    let today = OffsetDateTime::now_utc().date();
                    match (details.birth_date, details.birth_year) {
                        (Some(born), _) => {
                            let had_birthday = (today.month() as u8, today.day())
                                >= (born.month() as u8, born.day());
                            Some(
                                (today.year() - born.year() - i32::from(!had_birthday)).to_string(),
                            )
                        }
                        (None, Some(year)) => Some((today.year() - year).to_string()),
                        (None, None) => None,
                    }
                }
                "citizenships" => non_empty(details.citizenships.join(",")),
                "languages" => non_empty(details.languages.join(",")),
                "phone" => non_empty(details.phone.clone()),
                _ => None,
            }
        }
    }
}
