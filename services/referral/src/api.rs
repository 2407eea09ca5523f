//! The gRPC face of the referral service.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::Action;
use haven_auth::grpc::principal;
use haven_error::HavenError;
use haven_error::fields::{expected_version, parse_id};
use haven_proto::common::v1::PageResponse;
use haven_proto::referral::v1 as pb;
use haven_proto::referral::v1::referral_service_server::ReferralService;
use haven_storage::cursor;

use haven_audit::AuditContext;
use haven_auth::Scope;
use haven_config::ReferralSettings;
use time::OffsetDateTime;

use crate::domain::{
    AGE_GROUPS, Acceptance, FacilityDetails, GENDERS, Organization, OrganizationType, Profile,
    ReferralStatus, SERVICE_TYPES, Side, Urgency, nearest,
};
use crate::geo::{Gazetteer, Point};
use crate::peers::Peers;
use crate::store::{
    DirectoryStore, FacilityFilter, NewOrganization, NewReferral, ReferralFilter, StatusChange,
};

/// Implements `haven.referral.v1.ReferralService`.
#[derive(Debug, Clone)]
pub struct ReferralApi {
    store: Arc<dyn DirectoryStore>,
    peers: Peers,
    gazetteer: Arc<Gazetteer>,
    settings: Arc<ReferralSettings>,
}

impl ReferralApi {
    /// The API over a store, calling case and intake through `peers`.
    pub fn new(
        store: Arc<dyn DirectoryStore>,
        peers: Peers,
        gazetteer: Gazetteer,
        settings: ReferralSettings,
    ) -> Self {
        Self {
            store,
            peers,
            gazetteer: Arc::new(gazetteer),
            settings: Arc::new(settings),
        }
    }
}

/// The gender a place is sought for, in the directory's words (`female`, `male`,
/// `other`). Intake's words are taken too: `transgender_or_other` is `other`, and
/// `unknown` (like empty) does not filter.
fn profile_gender(value: &str) -> Result<Option<String>, HavenError> {
    Ok(match value.trim() {
        "" | "unknown" => None,
        "transgender_or_other" => Some("other".to_owned()),
        gender => codes("profile.gender", &[gender.to_owned()], &GENDERS)?.pop(),
    })
}

/// Trimmed text of at most `max` characters without control characters.
fn text(field: &str, value: &str, max: usize, required: bool) -> Result<String, HavenError> {
    let value = value.trim();
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(HavenError::invalid_field(
            field,
            format!("must be at most {max} printable characters"),
        ));
    }
    if required && value.is_empty() {
        return Err(HavenError::invalid_field(field, "is required"));
    }
    Ok(value.to_owned())
}

fn service_type(field: &str, value: &str) -> Result<String, HavenError> {
    let value = value.trim();
    if !SERVICE_TYPES.contains(&value) {
        return Err(HavenError::invalid_field(
            field,
            format!("must be one of {}", SERVICE_TYPES.join(", ")),
        ));
    }
    Ok(value.to_owned())
}

/// A list of values from a closed set, deduplicated.
fn codes(field: &str, values: &[String], allowed: &[&str]) -> Result<Vec<String>, HavenError> {
    let mut codes: Vec<String> = Vec::new();
    for value in values {
        let value = value.trim();
        if !allowed.contains(&value) {
            return Err(HavenError::invalid_field(
                field,
                format!("must be of {}", allowed.join(", ")),
            ));
        }
        if !codes.iter().any(|code| code == value) {
            codes.push(value.to_owned());
        }
    }
    Ok(codes)
}

/// ISO 639 language codes: two or three lower-case letters.
fn languages(field: &str, values: &[String]) -> Result<Vec<String>, HavenError> {
    if values.len() > 20 {
        return Err(HavenError::invalid_field(field, "at most 20 languages"));
    }
    let mut languages: Vec<String> = Vec::new();
    for value in values {
        let value = value.trim();
        if !(2..=3).contains(&value.len()) || !value.bytes().all(|byte| byte.is_ascii_lowercase()) {
            return Err(HavenError::invalid_field(
                field,
                "must be ISO 639 codes such as az, ru, en",
            ));
        }
        if !languages.iter().any(|language| language == value) {
            languages.push(value.to_owned());
        }
    }
    Ok(languages)
}

/// A radius in km: the default when 0, at most 2,000 km.
fn radius(value: f64, default: f64) -> Result<f64, HavenError> {
    if value == 0.0 {
        return Ok(default);
    }
    if !(value > 0.0 && value <= 2_000.0) {
        return Err(HavenError::invalid_field(
            "radius_km",
            "must be more than 0 and at most 2000 km",
        ));
    }
    Ok(value)
}

fn next_cursor(
    positions: impl DoubleEndedIterator<Item = i64>,
    count: usize,
    limit: u32,
) -> String {
    if count == limit as usize {
        positions.last().map(cursor::encode).unwrap_or_default()
    } else {
        String::new()
    }
}

impl ReferralApi {
    /// Where a search or a facility is: a gazetteer settlement, or explicit coordinates.
    fn locate(
        &self,
        settlement: &str,
        latitude: Option<f64>,
        longitude: Option<f64>,
    ) -> Result<Point, HavenError> {
        match (latitude, longitude) {
            (Some(latitude), Some(longitude)) => Point::new(latitude, longitude).ok_or_else(|| {
                HavenError::invalid_field("latitude", "coordinates must be -90..90 and -180..180")
            }),
            (None, None) => self
                .gazetteer
                .find(settlement)
                .map(|found| found.point)
                .ok_or_else(|| {
                    HavenError::invalid_field(
                        "settlement",
                        "is not in the gazetteer (GET /v1/settlements); give coordinates instead",
                    )
                }),
            _ => Err(HavenError::invalid_field(
                "longitude",
                "latitude and longitude come together",
            )),
        }
    }

    fn facility_details(
        &self,
        details: Option<pb::FacilityDetails>,
    ) -> Result<FacilityDetails, HavenError> {
        let details = details.ok_or_else(|| HavenError::invalid_field("details", "is required"))?;
        let settlement = text("settlement", &details.settlement, 200, true)?;
        let point = self.locate(&settlement, details.latitude, details.longitude)?;
        let service_types = codes("service_types", &details.service_types, &SERVICE_TYPES)?;
        if service_types.is_empty() {
            return Err(HavenError::invalid_field(
                "service_types",
                "name at least one service",
            ));
        }
        if details.capacity_total > 100_000 {
            return Err(HavenError::invalid_field(
                "capacity_total",
                "must be at most 100000",
            ));
        }
        let accepts = details.accepts.unwrap_or_default();
        let contact_email = text("contact_email", &details.contact_email, 200, false)?;
        if !contact_email.is_empty() && !contact_email.contains('@') {
            return Err(HavenError::invalid_field(
                "contact_email",
                "must be an email address",
            ));
        }
        Ok(FacilityDetails {
            name: name(&details.name)?,
            address: text("address", &details.address, 300, false)?,
            settlement,
            point,
            service_types,
            capacity_total: details.capacity_total,
            accepts: Acceptance {
                genders: codes("accepts.genders", &accepts.genders, &GENDERS)?,
                age_groups: codes("accepts.age_groups", &accepts.age_groups, &AGE_GROUPS)?,
                minors: accepts.minors,
                families: accepts.families,
            },
            languages: languages("languages", &details.languages)?,
            opening_hours: text("opening_hours", &details.opening_hours, 200, false)?,
            contact_phone: text("contact_phone", &details.contact_phone, 50, false)?,
            contact_email,
            active: details.active.unwrap_or(true),
        })
    }

    /// The receiving organisation's type, as consent limits sharing by it.
    async fn organization_type(&self, id: Uuid) -> Result<&'static str, HavenError> {
        let organization = self.store.get_organization(id).await?.ok_or_else(|| {
            HavenError::internal(std::io::Error::other("facility of an unknown organisation"))
        })?;
        Ok(organization.organization_type.as_str())
    }
}

fn name(value: &str) -> Result<String, HavenError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(HavenError::invalid_field("name", "must not be empty"));
    }
    if value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(HavenError::invalid_field(
            "name",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(value.to_owned())
}

#[tonic::async_trait]
impl ReferralService for ReferralApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::OrganizationCreate)?;
        let mut message = request.into_inner();
        let once = haven_audit::context::caller_key(
            &caller,
            "organization.create",
            &mut message,
            |message| &mut message.idempotency_key,
        )?;
        let id = match message.id.trim() {
            "" => None,
            id => Some(parse_id("id", id)?),
        };
        // Registering another organisation's id is the directory keeper's: anyone
        // else could take over an id before its organisation registers.
        if id.is_some_and(|id| id != caller.organization_id) {
            caller.require(Action::DirectoryManageAny)?;
        }
        let organization_type = pb::OrganizationType::try_from(message.organization_type)
            .ok()
            .and_then(OrganizationType::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field(
                    "organization_type",
                    "is required and must be one of the listed values",
                )
            })?;
        let settlement = message.settlement.trim().to_owned();
        if settlement.chars().count() > 200 {
            return Err(
                HavenError::invalid_field("settlement", "must be at most 200 characters").into(),
            );
        }
        let organization = self
            .store
            .create_organization(
                NewOrganization {
                    id,
                    name: name(&message.name)?,
                    organization_type,
                    settlement,
                    created_by: caller.subject,
                },
                once.as_ref(),
            )
            .await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization: Some(organization.record.to_proto()),
            replayed: organization.replayed,
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        principal(&request)?.require(Action::OrganizationRead)?;
        let id = Uuid::parse_str(&request.get_ref().id)
            .map_err(|_| HavenError::invalid_field("id", "must be a UUID"))?;
        let organization = self
            .store
            .get_organization(id)
            .await?
            .ok_or_else(|| HavenError::not_found("organization"))?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization.to_proto()),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        principal(&request)?.require(Action::OrganizationRead)?;
        let page = request.into_inner().page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let organizations = self
            .store
            .list_organizations(cursor::decode(&page.cursor)?, limit)
            .await?;
        let next_cursor = if organizations.len() == limit as usize {
            organizations
                .last()
                .map(|org| cursor::encode(org.position))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: organizations.iter().map(Organization::to_proto).collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn create_facility(
        &self,
        request: Request<pb::CreateFacilityRequest>,
    ) -> Result<Response<pb::CreateFacilityResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::FacilityManage)?;
        let mut message = request.into_inner();
        let once = context.caller_key("facility.create", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let organization_id = match message.organization_id.trim() {
            "" => context.principal.organization_id,
            id => {
                let id = parse_id("organization_id", id)?;
                // Another organisation's facility: only those who keep the directory.
                if id != context.principal.organization_id {
                    context.principal.require(Action::DirectoryManageAny)?;
                }
                id
            }
        };
        let details = self.facility_details(message.details)?;
        let facility = self
            .store
            .create_facility(&context, organization_id, details, once.as_ref())
            .await?;
        Ok(Response::new(pb::CreateFacilityResponse {
            facility: Some(facility.record.to_proto()),
            replayed: facility.replayed,
        }))
    }

    async fn get_facility(
        &self,
        request: Request<pb::GetFacilityRequest>,
    ) -> Result<Response<pb::GetFacilityResponse>, Status> {
        principal(&request)?.require(Action::FacilityRead)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let facility = self
            .store
            .get_facility(id)
            .await?
            .ok_or_else(|| HavenError::not_found("facility"))?;
        Ok(Response::new(pb::GetFacilityResponse {
            facility: Some(facility.to_proto()),
        }))
    }

    async fn list_facilities(
        &self,
        request: Request<pb::ListFacilitiesRequest>,
    ) -> Result<Response<pb::ListFacilitiesResponse>, Status> {
        principal(&request)?.require(Action::FacilityRead)?;
        let message = request.into_inner();
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let filter = FacilityFilter {
            organization_id: match message.organization_id.trim() {
                "" => None,
                id => Some(parse_id("organization_id", id)?),
            },
            service_type: match message.service_type.trim() {
                "" => None,
                kind => Some(service_type("service_type", kind)?),
            },
            settlement: Some(text("settlement", &message.settlement, 200, false)?)
                .filter(|settlement| !settlement.is_empty()),
            active_only: message.active_only,
        };
        let facilities = self
            .store
            .list_facilities(&filter, cursor::decode(&page.cursor)?, limit)
            .await?;
        Ok(Response::new(pb::ListFacilitiesResponse {
            page: Some(PageResponse {
                next_cursor: next_cursor(
                    facilities.iter().map(|facility| facility.position),
                    facilities.len(),
                    limit,
                ),
            }),
            facilities: facilities
                .iter()
                .map(|facility| facility.to_proto())
                .collect(),
        }))
    }

    async fn update_facility(
        &self,
        request: Request<pb::UpdateFacilityRequest>,
    ) -> Result<Response<pb::UpdateFacilityResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::FacilityManage)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let expected = expected_version(message.expected_version)?;
        let details = self.facility_details(message.details)?;
        // One's own organisation's facilities; every one for the directory's keeper.
        let scope = if context.principal.can(Action::DirectoryManageAny) {
            Scope::All
        } else {
            Scope::of(&context.principal)
        };
        let facility = self
            .store
            .update_facility(&context, scope, id, expected, details)
            .await?
            .ok_or_else(|| HavenError::not_found("facility"))?;
        Ok(Response::new(pb::UpdateFacilityResponse {
            facility: Some(facility.to_proto()),
        }))
    }

    async fn search_facilities(
        &self,
        request: Request<pb::SearchFacilitiesRequest>,
    ) -> Result<Response<pb::SearchFacilitiesResponse>, Status> {
        principal(&request)?.require(Action::FacilityRead)?;
        let message = request.into_inner();
        let kind = service_type("service_type", &message.service_type)?;
        let center = self.locate(&message.settlement, message.latitude, message.longitude)?;
        let radius_km = radius(message.radius_km, self.settings.default_radius_km)?;
        let limit = match message.limit {
            0 => 20,
            limit @ 1..=100 => limit as usize,
            _ => return Err(HavenError::invalid_field("limit", "must be 1 to 100").into()),
        };
        let profile = message.profile.unwrap_or_default();
        let profile = Profile {
            gender: profile_gender(&profile.gender)?,
            age: (profile.age > 0).then_some(profile.age),
            minor: profile.minor,
            family: profile.family,
            language: match profile.language.trim() {
                "" => None,
                language => languages("profile.language", &[language.to_owned()])?.pop(),
            },
        };
        let candidates = self
            .store
            .facilities_in(&kind, center.bounding_box(radius_km), message.include_full)
            .await?;
        let matches = nearest(candidates, center, radius_km, &profile, limit);
        Ok(Response::new(pb::SearchFacilitiesResponse {
            matches: matches
                .into_iter()
                .map(|(distance_km, facility)| pb::FacilityMatch {
                    facility: Some(facility.to_proto()),
                    distance_km: (distance_km * 10.0).round() / 10.0,
                })
                .collect(),
            radius_km,
        }))
    }

    async fn get_coverage(
        &self,
        request: Request<pb::GetCoverageRequest>,
    ) -> Result<Response<pb::GetCoverageResponse>, Status> {
        principal(&request)?.require(Action::CoverageRead)?;
        let message = request.into_inner();
        let kind = service_type("service_type", &message.service_type)?;
        let radius_km = radius(message.radius_km, self.settings.default_radius_km)?;
        let facilities = self.store.facility_points(&kind).await?;
        let settlements = self.gazetteer.settlements();
        let mut uncovered = Vec::new();
        for settlement in settlements {
            let nearest = facilities
                .iter()
                .map(|(id, point)| (settlement.point.distance_km(*point), id))
                .min_by(|(left, _), (right, _)| left.total_cmp(right));
            match nearest {
                Some((distance, _)) if distance <= radius_km => {}
                nearest => uncovered.push((
                    nearest.map_or(f64::INFINITY, |(distance, _)| distance),
                    pb::UncoveredSettlement {
                        name: settlement.name.clone(),
                        latitude: settlement.point.latitude,
                        longitude: settlement.point.longitude,
                        nearest_facility_id: nearest
                            .map(|(_, id)| id.to_string())
                            .unwrap_or_default(),
                        nearest_distance_km: nearest
                            .map_or(0.0, |(distance, _)| (distance * 10.0).round() / 10.0),
                    },
                )),
            }
        }
        // Farthest from any help first: where the next centre is needed most.
        uncovered.sort_by(|(left, _), (right, _)| right.total_cmp(left));
        let total = u32::try_from(settlements.len()).unwrap_or(u32::MAX);
        let missing = u32::try_from(uncovered.len()).unwrap_or(u32::MAX);
        Ok(Response::new(pb::GetCoverageResponse {
            radius_km,
            settlements_total: total,
            settlements_covered: total - missing,
            uncovered: uncovered
                .into_iter()
                .map(|(_, settlement)| settlement)
                .collect(),
        }))
    }

    async fn list_settlements(
        &self,
        request: Request<pb::ListSettlementsRequest>,
    ) -> Result<Response<pb::ListSettlementsResponse>, Status> {
        principal(&request)?.require(Action::FacilityRead)?;
        Ok(Response::new(pb::ListSettlementsResponse {
            settlements: self
                .gazetteer
                .settlements()
                .iter()
                .map(|settlement| pb::Settlement {
                    name: settlement.name.clone(),
                    name_en: settlement.name_en.clone(),
                    latitude: settlement.point.latitude,
                    longitude: settlement.point.longitude,
                })
                .collect(),
        }))
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<Response<pb::CreateReferralResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::ReferralCreate)?;
        let mut message = request.into_inner();
        let once = context.caller_key("referral.create", &mut message, |message| {
            &mut message.idempotency_key
        })?;
        let case_id = parse_id("case_id", &message.case_id)?;
        let facility_id = parse_id("facility_id", &message.facility_id)?;
        let kind = service_type("service_type", &message.service_type)?;
        let purpose = text("purpose", &message.purpose, 1_000, true)?;
        let urgency = pb::Urgency::try_from(message.urgency)
            .ok()
            .and_then(Urgency::from_proto)
            .ok_or_else(|| {
                HavenError::invalid_field("urgency", "is required: routine, urgent or emergency")
            })?;
        let now = OffsetDateTime::now_utc();
        let accept_by = match message.accept_by {
            None => now + urgency.answer_within(),
            Some(at) => haven_proto::from_timestamp(&at)
                .filter(|at| *at > now)
                .ok_or_else(|| {
                    HavenError::invalid_field("accept_by", "must be a time in the future")
                })?,
        };
        let outcome_due_on = match message.outcome_due_on.trim() {
            "" => (now + time::Duration::days(30)).date(),
            text => time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
            .filter(|date| *date >= now.date())
            .ok_or_else(|| {
                HavenError::invalid_field(
                    "outcome_due_on",
                    "must be a date (YYYY-MM-DD), not in the past",
                )
            })?,
        };
        // A retry of a referral that was made gets it, whatever the checks below
        // would say now (the case may have closed since).
        if let Some(once) = &once
            && let Some(referral) = self.store.replayed_referral(&context, once).await?
        {
            return Ok(Response::new(pb::CreateReferralResponse {
                referral: Some(referral.to_proto(now)),
                replayed: true,
            }));
        }
        let scope = Scope::of(&context.principal);
        // The case, and only the owner's staff refer it.
        let case = self
            .peers
            .case(&context, case_id)
            .await?
            .filter(|case| scope.contains(case.organization_id))
            .ok_or_else(|| HavenError::not_found("case"))?;
        if !case.open {
            return Err(HavenError::new(
                haven_error::ErrorCode::Conflict,
                "the case is closed; reopen it to refer",
            )
            .into());
        }
        let facility = self
            .store
            .get_facility(facility_id)
            .await?
            .ok_or_else(|| HavenError::not_found("facility"))?;
        if !facility.details.active {
            return Err(HavenError::new(
                haven_error::ErrorCode::Conflict,
                "the facility takes no referrals (inactive)",
            )
            .into());
        }
        if !facility.details.service_types.contains(&kind) {
            return Err(HavenError::invalid_field(
                "service_type",
                "is not offered by this facility",
            )
            .into());
        }
        // Consent is checked now, for this kind of organisation: intake refuses
        // without it, with the reason.
        let organization_type = self.organization_type(facility.organization_id).await?;
        self.peers
            .share(
                &context,
                case.screening_id,
                organization_type,
                facility.organization_id,
                &[],
            )
            .await?;
        let referral = self
            .store
            .create_referral(
                &context,
                NewReferral {
                    case_id,
                    case_code: case.code,
                    screening_id: case.screening_id,
                    from_organization_id: case.organization_id,
                    facility,
                    service_type: kind,
                    purpose,
                    urgency,
                    accept_by,
                    outcome_due_on,
                },
                once.as_ref(),
            )
            .await?;
        Ok(Response::new(pb::CreateReferralResponse {
            referral: Some(referral.record.to_proto(now)),
            replayed: referral.replayed,
        }))
    }

    async fn get_referral(
        &self,
        request: Request<pb::GetReferralRequest>,
    ) -> Result<Response<pb::GetReferralResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::ReferralRead)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let referral = self
            .store
            .get_referral(&context, Scope::of(&context.principal), id)
            .await?
            .ok_or_else(|| HavenError::not_found("referral"))?;
        Ok(Response::new(pb::GetReferralResponse {
            referral: Some(referral.to_proto(OffsetDateTime::now_utc())),
        }))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::ReferralRead)?;
        let message = request.into_inner();
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let filter = ReferralFilter {
            side: match pb::ReferralDirection::try_from(message.direction) {
                Ok(pb::ReferralDirection::Unspecified) => None,
                Ok(pb::ReferralDirection::Outgoing) => Some(Side::Sender),
                Ok(pb::ReferralDirection::Incoming) => Some(Side::Receiver),
                Err(_) => {
                    return Err(
                        HavenError::invalid_field("direction", "incoming or outgoing").into(),
                    );
                }
            },
            status: match message.status {
                0 => None,
                value => Some(
                    pb::ReferralStatus::try_from(value)
                        .ok()
                        .and_then(ReferralStatus::from_proto)
                        .ok_or_else(|| {
                            HavenError::invalid_field("status", "is not one of the listed values")
                        })?,
                ),
            },
            case_id: match message.case_id.trim() {
                "" => None,
                id => Some(parse_id("case_id", id)?),
            },
            acceptance_overdue: message.acceptance_overdue,
            outcome_overdue: message.outcome_overdue,
        };
        let referrals = self
            .store
            .list_referrals(
                &context,
                Scope::of(&context.principal),
                &filter,
                cursor::decode(&page.cursor)?,
                limit,
            )
            .await?;
        let now = OffsetDateTime::now_utc();
        Ok(Response::new(pb::ListReferralsResponse {
            page: Some(PageResponse {
                next_cursor: next_cursor(
                    referrals.iter().map(|referral| referral.position),
                    referrals.len(),
                    limit,
                ),
            }),
            referrals: referrals
                .iter()
                .map(|referral| referral.to_proto(now))
                .collect(),
        }))
    }

    async fn change_referral_status(
        &self,
        request: Request<pb::ChangeReferralStatusRequest>,
    ) -> Result<Response<pb::ChangeReferralStatusResponse>, Status> {
        let status = pb::ReferralStatus::try_from(request.get_ref().status)
            .ok()
            .and_then(ReferralStatus::from_proto)
            .filter(|status| *status != ReferralStatus::Requested)
            .ok_or_else(|| {
                HavenError::invalid_field(
                    "status",
                    "must be accepted, declined, in_progress, completed, cancelled or revoked",
                )
            })?;
        let action = match status.moved_by() {
            Side::Receiver => Action::ReferralRespond,
            Side::Sender => Action::ReferralCreate,
        };
        let context = AuditContext::from_request(&request, action)?;
        let message = request.into_inner();
        let id = parse_id("id", &message.id)?;
        let expected = expected_version(message.expected_version)?;
        let needs_reason = matches!(
            status,
            ReferralStatus::Declined | ReferralStatus::Cancelled | ReferralStatus::Revoked
        );
        let change = StatusChange {
            to: status,
            reason: text("reason", &message.reason, 1_000, needs_reason)?,
            outcome: text(
                "outcome",
                &message.outcome,
                2_000,
                status == ReferralStatus::Completed,
            )?,
        };
        let referral = self
            .store
            .change_referral_status(
                &context,
                Scope::of(&context.principal),
                id,
                expected,
                change,
            )
            .await?
            .ok_or_else(|| HavenError::not_found("referral"))?;
        Ok(Response::new(pb::ChangeReferralStatusResponse {
            referral: Some(referral.to_proto(OffsetDateTime::now_utc())),
        }))
    }

    async fn get_referral_disclosure(
        &self,
        request: Request<pb::GetReferralDisclosureRequest>,
    ) -> Result<Response<pb::GetReferralDisclosureResponse>, Status> {
        let context = AuditContext::from_request(&request, Action::ReferralDisclosureRead)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let scope = Scope::of(&context.principal);
        // Only the receiving side, and only while the referral is open.
        let referral = self
            .store
            .get_referral(&context, scope, id)
            .await?
            .filter(|referral| scope.contains(referral.to_organization_id))
            .ok_or_else(|| HavenError::not_found("referral"))?;
        if !referral.status.is_open() {
            return Err(HavenError::new(
                haven_error::ErrorCode::PermissionDenied,
                format!(
                    "the referral is `{}`: what it disclosed is no longer available",
                    referral.status.as_str()
                ),
            )
            .into());
        }
        let fields = self
            .settings
            .disclosure
            .get(&referral.service_type)
            .unwrap_or(&self.settings.default_disclosure)
            .clone();
        let organization_type = self.organization_type(referral.to_organization_id).await?;
        let shared = match self
            .peers
            .share(
                &context,
                referral.screening_id,
                organization_type,
                referral.to_organization_id,
                &fields,
            )
            .await
        {
            Ok(shared) => shared,
            // Consent withdrawn (or the person erased) since the referral was made.
            Err(error)
                if error.code() == haven_error::ErrorCode::Conflict
                    || error.code() == haven_error::ErrorCode::NotFound =>
            {
                return Err(HavenError::new(
                    haven_error::ErrorCode::PermissionDenied,
                    error.message().to_owned(),
                )
                .into());
            }
            Err(error) => return Err(error.into()),
        };
        self.store.audit_disclosure(&context, &referral).await?;
        Ok(Response::new(pb::GetReferralDisclosureResponse {
            referral_id: referral.id.to_string(),
            case_code: referral.case_code,
            fields: shared
                .into_iter()
                .map(|(name, value)| pb::DisclosedField { name, value })
                .collect(),
        }))
    }
}
