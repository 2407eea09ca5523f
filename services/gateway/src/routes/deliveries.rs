//! `/v1/cases/{id}/services` and `/v1/cases/{id}/payments`: the services delivered
//! for a case and its cash-assistance ledger (case service).

use axum::extract::State;
use axum::response::Response;
use haven_error::HavenError;
use haven_proto::case::v1 as case;

use super::cases::{BACKEND, cases};
use super::{created, paths, with_etag};
use crate::dto::delivery::{
    AddService, CurrencyTotal, Payment, PaymentLedger, RecordPayment, ServiceDelivery, ServiceList,
    UpdateService,
};
use crate::dto::missing_in_response;
use crate::error::backend_error;
use crate::extract::{Caller, IfMatch, Json, PathId, PathIds};
use crate::idempotency::{ForwardedKey, mark_replayed};
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::state::AppState;

fn service_of(service: Option<case::ServiceDelivery>) -> Result<ServiceDelivery, HavenError> {
    service
        .map(ServiceDelivery::from)
        .ok_or_else(|| missing_in_response("service"))
}

/// Record a service delivered (or planned) for a case.
#[utoipa::path(
    post,
    path = paths::CASE_SERVICES,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = AddService,
    responses(
        (status = 201, description = "The service", body = ServiceDelivery, headers(
            ("etag" = String, description = "Version of the service"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "add_service", skip_all, fields(case_id = %id))]
pub(crate) async fn add_service(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<AddService>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id)?;
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = cases(&state)
        .add_service(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let response = response.into_inner();
    let service = service_of(response.service)?;
    Ok(mark_replayed(
        created(None, service.version, service),
        response.replayed,
    ))
}

/// A case's services.
#[utoipa::path(
    get,
    path = paths::CASE_SERVICES,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The services", body = ServiceList),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_services", skip_all, fields(case_id = %id))]
pub(crate) async fn list_services(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<ServiceList>, HavenError> {
    let request = caller.grpc_request(case::ListServicesRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .list_services(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(ServiceList {
        items: response
            .services
            .into_iter()
            .map(ServiceDelivery::from)
            .collect(),
    }))
}

/// Change a service's status (forward only) or dates; only the fields present change.
/// Needs `If-Match` of the service: `428` without it, `412` if someone changed it
/// since you read it.
#[utoipa::path(
    patch,
    path = paths::CASE_SERVICE,
    tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "Case id"),
        ("service_id" = uuid::Uuid, Path, description = "Service id"),
        ("if-match" = String, Header, description = "ETag of the service as you read it"),
    ),
    request_body = UpdateService,
    responses(
        (status = 200, description = "The updated service", body = ServiceDelivery, headers(
            ("etag" = String, description = "New version of the service"),
        )),
        CommonErrors,
        BodyErrors,
        NotFound,
        (status = 409, description = "The status cannot move back"),
        (status = 412, description = "The service changed since you read it"),
        (status = 428, description = "If-Match is missing"),
    )
)]
#[tracing::instrument(name = "update_service", skip_all, fields(case_id = %case_id, service_id = %id))]
pub(crate) async fn update_service(
    State(state): State<AppState>,
    caller: Caller,
    PathIds(case_id, id): PathIds,
    IfMatch(expected_version): IfMatch,
    Json(body): Json<UpdateService>,
) -> Result<Response, HavenError> {
    let request = caller.grpc_request(body.into_proto(case_id, id, expected_version)?)?;
    let response = cases(&state)
        .update_service(request)
        .await
        .map_err(backend_error(BACKEND))?;
    let service = service_of(response.into_inner().service)?;
    Ok(with_etag(service.version, service))
}

/// Append a payment to the case's cash-assistance ledger. The ledger is append-only:
/// a mistake is corrected by a reversal (`reverses_payment_id`).
#[utoipa::path(
    post,
    path = paths::CASE_PAYMENTS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    request_body = RecordPayment,
    responses(
        (status = 201, description = "The payment", body = Payment),
        CommonErrors,
        BodyErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "record_payment", skip_all, fields(case_id = %id))]
pub(crate) async fn record_payment(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ForwardedKey(idempotency_key): ForwardedKey,
    Json(body): Json<RecordPayment>,
) -> Result<Response, HavenError> {
    let mut message = body.into_proto(id)?;
    message.idempotency_key = idempotency_key;
    let request = caller.grpc_request(message)?;
    let response = cases(&state)
        .record_payment(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    let payment = response
        .payment
        .map(Payment::from)
        .ok_or_else(|| missing_in_response("payment"))?;
    Ok(mark_replayed(created(None, 0, payment), response.replayed))
}

/// A case's cash-assistance ledger, with totals per currency.
#[utoipa::path(
    get,
    path = paths::CASE_PAYMENTS,
    tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "Case id")),
    responses(
        (status = 200, description = "The ledger", body = PaymentLedger),
        CommonErrors,
        NotFound,
    )
)]
#[tracing::instrument(name = "list_payments", skip_all, fields(case_id = %id))]
pub(crate) async fn list_payments(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<PaymentLedger>, HavenError> {
    let request = caller.grpc_request(case::ListPaymentsRequest {
        case_id: id.to_string(),
    })?;
    let response = cases(&state)
        .list_payments(request)
        .await
        .map_err(backend_error(BACKEND))?
        .into_inner();
    Ok(Json(PaymentLedger {
        items: response.payments.into_iter().map(Payment::from).collect(),
        totals: response
            .totals
            .into_iter()
            .map(CurrencyTotal::from)
            .collect(),
    }))
}
