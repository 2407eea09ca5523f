//! A fake referral service (facilities and referrals; organisations are not faked)
//! that answers from what it is sent and keeps the requests tests look into.

use std::sync::{Arc, Mutex};

use haven_error::HavenError;
use haven_proto::referral::v1 as referral;
use haven_proto::referral::v1::referral_service_server::ReferralService;
use tonic::{Request, Response, Status};

use crate::fake_backend::{MISSING_ID, SeenCall, record_call};

/// Id of the facility every create answers with.
pub const FACILITY_ID: &str = "fac1fac1-0000-4000-8000-000000000001";
/// Id of the referral every create answers with.
pub const REFERRAL_ID: &str = "4ef04ef0-0000-4000-8000-000000000001";
/// Organisation of the facilities.
pub const PROVIDER_ID: &str = "0b0b0b0b-0000-4000-8000-000000000002";

/// Requests the fake received whose fields tests check.
#[derive(Debug, Clone, Default)]
pub struct ReferralRequests {
    pub facility_creates: Vec<referral::CreateFacilityRequest>,
    pub facility_updates: Vec<referral::UpdateFacilityRequest>,
    pub searches: Vec<referral::SearchFacilitiesRequest>,
    pub coverage: Vec<referral::GetCoverageRequest>,
    pub referral_creates: Vec<referral::CreateReferralRequest>,
    pub lists: Vec<referral::ListReferralsRequest>,
    pub status_changes: Vec<referral::ChangeReferralStatusRequest>,
}

pub struct FakeReferral {
    pub seen: Arc<Mutex<Vec<SeenCall>>>,
    pub requests: Arc<Mutex<ReferralRequests>>,
}

impl FakeReferral {
    fn keep<T>(&self, method: &'static str, request: Request<T>) -> T {
        record_call(&self.seen, method, &request);
        request.into_inner()
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, ReferralRequests> {
        self.requests.lock().unwrap()
    }
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn facility(id: &str, details: referral::FacilityDetails, version: u64) -> referral::Facility {
    referral::Facility {
        id: id.to_owned(),
        organization_id: PROVIDER_ID.to_owned(),
        name: details.name,
        address: details.address,
        settlement: details.settlement,
        latitude: details.latitude.unwrap_or(40.68),
        longitude: details.longitude.unwrap_or(46.36),
        service_types: details.service_types,
        capacity_total: details.capacity_total,
        capacity_free: details.capacity_total,
        accepts: details.accepts,
        languages: details.languages,
        opening_hours: details.opening_hours,
        contact_phone: details.contact_phone,
        contact_email: details.contact_email,
        active: details.active.unwrap_or(true),
        version,
        created_at: timestamp(1_767_320_000),
    }
}

fn shelter() -> referral::FacilityDetails {
    referral::FacilityDetails {
        name: "Ganja shelter".to_owned(),
        settlement: "Ganja".to_owned(),
        service_types: vec!["shelter".to_owned()],
        capacity_total: 12,
        accepts: Some(referral::Acceptance {
            genders: vec!["female".to_owned()],
            ..Default::default()
        }),
        languages: vec!["az".to_owned(), "ru".to_owned()],
        active: Some(true),
        ..Default::default()
    }
}

fn referral(id: &str, status: referral::ReferralStatus, version: u64) -> referral::Referral {
    referral::Referral {
        id: id.to_owned(),
        case_id: "5a1d2c3b-0000-4000-8000-00000000ca5e".to_owned(),
        case_code: "HV-2026-000042".to_owned(),
        from_organization_id: "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e".to_owned(),
        to_organization_id: PROVIDER_ID.to_owned(),
        facility_id: FACILITY_ID.to_owned(),
        service_type: "shelter".to_owned(),
        purpose: "A bed for two weeks".to_owned(),
        urgency: referral::Urgency::Urgent as i32,
        requested_by: "user-7".to_owned(),
        requested_at: timestamp(1_767_320_000),
        accept_by: timestamp(1_767_398_400),
        outcome_due_on: "2026-02-01".to_owned(),
        status: status as i32,
        status_reason: String::new(),
        outcome: String::new(),
        capacity_reserved: false,
        acceptance_overdue: false,
        outcome_overdue: false,
        version,
        updated_at: timestamp(1_767_320_000),
    }
}

fn not_faked<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not faked"))
}

#[tonic::async_trait]
impl ReferralService for FakeReferral {
    async fn create_organization(
        &self,
        _request: Request<referral::CreateOrganizationRequest>,
    ) -> Result<Response<referral::CreateOrganizationResponse>, Status> {
        not_faked()
    }

    async fn get_organization(
        &self,
        _request: Request<referral::GetOrganizationRequest>,
    ) -> Result<Response<referral::GetOrganizationResponse>, Status> {
        not_faked()
    }

    async fn list_organizations(
        &self,
        _request: Request<referral::ListOrganizationsRequest>,
    ) -> Result<Response<referral::ListOrganizationsResponse>, Status> {
        not_faked()
    }

    async fn create_facility(
        &self,
        request: Request<referral::CreateFacilityRequest>,
    ) -> Result<Response<referral::CreateFacilityResponse>, Status> {
        let body = self.keep("create_facility", request);
        self.requests().facility_creates.push(body.clone());
        let details = body.details.unwrap_or_default();
        Ok(Response::new(referral::CreateFacilityResponse {
            replayed: false,
            facility: Some(facility(FACILITY_ID, details, 1)),
        }))
    }

    async fn get_facility(
        &self,
        request: Request<referral::GetFacilityRequest>,
    ) -> Result<Response<referral::GetFacilityResponse>, Status> {
        let id = self.keep("get_facility", request).id;
        if id == MISSING_ID {
            return Err(HavenError::not_found("facility").into_status());
        }
        Ok(Response::new(referral::GetFacilityResponse {
            facility: Some(facility(&id, shelter(), 4)),
        }))
    }

    async fn list_facilities(
        &self,
        request: Request<referral::ListFacilitiesRequest>,
    ) -> Result<Response<referral::ListFacilitiesResponse>, Status> {
        self.keep("list_facilities", request);
        Ok(Response::new(referral::ListFacilitiesResponse {
            facilities: vec![facility(FACILITY_ID, shelter(), 4)],
            page: Some(haven_proto::common::v1::PageResponse {
                next_cursor: String::new(),
            }),
        }))
    }

    async fn update_facility(
        &self,
        request: Request<referral::UpdateFacilityRequest>,
    ) -> Result<Response<referral::UpdateFacilityResponse>, Status> {
        let body = self.keep("update_facility", request);
        self.requests().facility_updates.push(body.clone());
        let version = body.expected_version + 1;
        let details = body.details.unwrap_or_default();
        Ok(Response::new(referral::UpdateFacilityResponse {
            facility: Some(facility(&body.id, details, version)),
        }))
    }

    async fn search_facilities(
        &self,
        request: Request<referral::SearchFacilitiesRequest>,
    ) -> Result<Response<referral::SearchFacilitiesResponse>, Status> {
        let body = self.keep("search_facilities", request);
        self.requests().searches.push(body.clone());
        let radius_km = if body.radius_km > 0.0 {
            body.radius_km
        } else {
            150.0
        };
        Ok(Response::new(referral::SearchFacilitiesResponse {
            matches: vec![referral::FacilityMatch {
                facility: Some(facility(FACILITY_ID, shelter(), 4)),
                distance_km: 12.5,
            }],
            radius_km,
        }))
    }

    async fn get_coverage(
        &self,
        request: Request<referral::GetCoverageRequest>,
    ) -> Result<Response<referral::GetCoverageResponse>, Status> {
        let body = self.keep("get_coverage", request);
        self.requests().coverage.push(body);
        Ok(Response::new(referral::GetCoverageResponse {
            radius_km: 150.0,
            settlements_total: 3,
            settlements_covered: 1,
            uncovered: vec![
                referral::UncoveredSettlement {
                    name: "Lerik".to_owned(),
                    latitude: 38.77,
                    longitude: 48.41,
                    nearest_facility_id: FACILITY_ID.to_owned(),
                    nearest_distance_km: 310.2,
                },
                referral::UncoveredSettlement {
                    name: "Astara".to_owned(),
                    latitude: 38.45,
                    longitude: 48.87,
                    nearest_facility_id: String::new(),
                    nearest_distance_km: 0.0,
                },
            ],
        }))
    }

    async fn list_settlements(
        &self,
        request: Request<referral::ListSettlementsRequest>,
    ) -> Result<Response<referral::ListSettlementsResponse>, Status> {
        self.keep("list_settlements", request);
        Ok(Response::new(referral::ListSettlementsResponse {
            settlements: vec![referral::Settlement {
                name: "Gəncə".to_owned(),
                name_en: "Ganja".to_owned(),
                latitude: 40.68,
                longitude: 46.36,
            }],
        }))
    }

    async fn create_referral(
        &self,
        request: Request<referral::CreateReferralRequest>,
    ) -> Result<Response<referral::CreateReferralResponse>, Status> {
        let body = self.keep("create_referral", request);
        self.requests().referral_creates.push(body);
        Ok(Response::new(referral::CreateReferralResponse {
            replayed: false,
            referral: Some(referral(
                REFERRAL_ID,
                referral::ReferralStatus::Requested,
                1,
            )),
        }))
    }

    async fn get_referral(
        &self,
        request: Request<referral::GetReferralRequest>,
    ) -> Result<Response<referral::GetReferralResponse>, Status> {
        let id = self.keep("get_referral", request).id;
        if id == MISSING_ID {
            return Err(HavenError::not_found("referral").into_status());
        }
        Ok(Response::new(referral::GetReferralResponse {
            referral: Some(referral(&id, referral::ReferralStatus::Accepted, 3)),
        }))
    }

    async fn list_referrals(
        &self,
        request: Request<referral::ListReferralsRequest>,
    ) -> Result<Response<referral::ListReferralsResponse>, Status> {
        let body = self.keep("list_referrals", request);
        self.requests().lists.push(body);
        Ok(Response::new(referral::ListReferralsResponse {
            referrals: vec![referral(
                REFERRAL_ID,
                referral::ReferralStatus::Requested,
                1,
            )],
            page: Some(haven_proto::common::v1::PageResponse {
                next_cursor: "next".to_owned(),
            }),
        }))
    }

    async fn change_referral_status(
        &self,
        request: Request<referral::ChangeReferralStatusRequest>,
    ) -> Result<Response<referral::ChangeReferralStatusResponse>, Status> {
        let body = self.keep("change_referral_status", request);
        self.requests().status_changes.push(body.clone());
        let status = referral::ReferralStatus::try_from(body.status)
            .map_err(|_| Status::invalid_argument("status"))?;
        let mut changed = referral(&body.id, status, body.expected_version + 1);
        changed.status_reason = body.reason;
        changed.outcome = body.outcome;
        Ok(Response::new(referral::ChangeReferralStatusResponse {
            referral: Some(changed),
        }))
    }

    async fn get_referral_disclosure(
        &self,
        request: Request<referral::GetReferralDisclosureRequest>,
    ) -> Result<Response<referral::GetReferralDisclosureResponse>, Status> {
        let id = self.keep("get_referral_disclosure", request).id;
        let field = |name: &str, value: &str| referral::DisclosedField {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        Ok(Response::new(referral::GetReferralDisclosureResponse {
            referral_id: id,
            case_code: "HV-2026-000042".to_owned(),
            fields: vec![
                field("given_name", "Aynur"),
                field("gender", "female"),
                field("languages", "az,ru"),
            ],
        }))
    }
}
