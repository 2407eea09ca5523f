//! The REST routes, each documented with `#[utoipa::path]`, and the response
//! helpers they share.

pub(crate) mod cases;
pub(crate) mod clocks;
pub(crate) mod deliveries;
pub(crate) mod facilities;
pub(crate) mod follow_ups;
pub(crate) mod health;
pub(crate) mod notes;
pub(crate) mod organizations;
pub(crate) mod persons;
pub(crate) mod plans;
pub(crate) mod referrals;
pub(crate) mod reports;
pub(crate) mod screenings;
pub(crate) mod transfers;

pub(crate) mod paths;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every documented route, with the OpenAPI document built from them.
pub(crate) fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            screenings::create_screening,
            screenings::list_screenings
        ))
        .routes(routes!(
            screenings::get_screening,
            screenings::update_screening
        ))
        .routes(routes!(screenings::record_consent))
        .routes(routes!(screenings::record_decision))
        .routes(routes!(cases::list_cases))
        .routes(routes!(cases::get_case, cases::update_case))
        .routes(routes!(cases::seal_case))
        .routes(routes!(cases::change_stage))
        .routes(routes!(cases::add_assessment, cases::list_assessments))
        .routes(routes!(
            transfers::request_transfer,
            transfers::list_case_transfers
        ))
        .routes(routes!(transfers::list_transfers))
        .routes(routes!(transfers::accept_transfer))
        .routes(routes!(transfers::reject_transfer))
        .routes(routes!(plans::submit_plan, plans::list_plans))
        .routes(routes!(plans::approve_plan))
        .routes(routes!(plans::reject_plan))
        .routes(routes!(plans::update_plan_action))
        .routes(routes!(deliveries::add_service, deliveries::list_services))
        .routes(routes!(deliveries::update_service))
        .routes(routes!(
            deliveries::record_payment,
            deliveries::list_payments
        ))
        .routes(routes!(
            follow_ups::schedule_follow_up,
            follow_ups::list_case_follow_ups
        ))
        .routes(routes!(follow_ups::record_follow_up_outcome))
        .routes(routes!(follow_ups::list_follow_ups))
        .routes(routes!(notes::add_note, notes::list_notes))
        .routes(routes!(cases::request_closure))
        .routes(routes!(cases::approve_closure))
        .routes(routes!(cases::reject_closure))
        .routes(routes!(cases::reopen_case))
        .routes(routes!(cases::get_timeline))
        .routes(routes!(
            organizations::create_organization,
            organizations::list_organizations
        ))
        .routes(routes!(organizations::get_organization))
        .routes(routes!(
            facilities::create_facility,
            facilities::list_facilities
        ))
        // A static segment wins over `{id}`: `/v1/facilities/search` is never a facility.
        .routes(routes!(facilities::search_facilities))
        .routes(routes!(
            facilities::get_facility,
            facilities::update_facility
        ))
        .routes(routes!(facilities::get_coverage))
        .routes(routes!(facilities::list_settlements))
        .routes(routes!(
            referrals::create_referral,
            referrals::list_referrals
        ))
        .routes(routes!(referrals::get_referral))
        .routes(routes!(referrals::accept_referral))
        .routes(routes!(referrals::decline_referral))
        .routes(routes!(referrals::start_referral))
        .routes(routes!(referrals::complete_referral))
        .routes(routes!(referrals::cancel_referral))
        .routes(routes!(referrals::revoke_referral))
        .routes(routes!(referrals::get_disclosure))
        .routes(routes!(persons::get_person, persons::erase_person))
        .routes(routes!(persons::access_log))
        .routes(routes!(persons::find_matches))
        .routes(routes!(persons::confirm_match))
        .routes(routes!(clocks::list_clocks))
        .routes(routes!(clocks::complete_clock))
        .routes(routes!(
            clocks::list_indicator_sets,
            clocks::publish_indicator_set
        ))
        .routes(routes!(clocks::get_indicator_set))
        .routes(routes!(reports::get_summary))
        .routes(routes!(reports::get_indicators))
        .routes(routes!(reports::export_ctdc))
        .routes(routes!(reports::list_releases))
        .routes(routes!(reports::release_private_counts))
        .routes(routes!(reports::get_privacy_budget))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::status))
}

/// A strong entity tag for a record version.
fn etag(version: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{version}\"")).ok()
}

/// `200` with the record and its `ETag`.
fn with_etag<T: Serialize>(version: u64, body: T) -> Response {
    let mut response = Json(body).into_response();
    if let Some(etag) = etag(version) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `201` with the record, its `ETag` and, for a new resource, its `Location`.
fn created<T: Serialize>(location: Option<String>, version: u64, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // Records without a version (assessments, notes, payments) are never updated.
    if let Some(etag) = etag(version).filter(|_| version > 0) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|location| HeaderValue::from_str(&location).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
