//! `/healthz` (liveness) and `/readyz` (every backend answers the gRPC health
//! check and the gateway's own database answers). Neither needs authentication.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use haven_error::{ErrorCode, PROBLEM_JSON, Problem};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::openapi::ProblemBody;
use crate::state::{AppState, Backend};

/// How long a backend has to answer the health check.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The gateway process is alive.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    status: &'static str,
}

/// What each backend answered to the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackendHealth {
    /// The service is serving.
    Serving,
    /// The service answered but is not serving (e.g. shutting down).
    NotServing,
    /// The service could not be reached or did not speak the health protocol.
    Unreachable,
    /// The service did not answer in time.
    Timeout,
}

/// Whether the gateway's own database answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DatabaseHealth {
    /// A query succeeded.
    Reachable,
    /// The query failed.
    Unreachable,
    /// The database did not answer in time.
    Timeout,
}

/// Every backend is serving and the gateway's database answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// Health of each backend by name.
    backends: BTreeMap<&'static str, BackendHealth>,
    /// Health of the gateway's own database.
    database: DatabaseHealth,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The gateway is alive", body = Liveness))
)]
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Readiness: every backend service answers the gRPC health check and the
/// gateway's own database answers a query.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Every backend is serving and the database answers",
            body = Readiness),
        (status = 503, description = "Some backend is not serving or the database does not \
            answer; `backends` and `database` say which",
            body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let checks = futures::future::join_all(state.backends().all().map(check));
    let (results, database) = tokio::join!(checks, check_database(&state));
    let backends: BTreeMap<&'static str, BackendHealth> = results.into_iter().collect();
    let mut down: Vec<&str> = backends
        .iter()
        .filter(|(_, health)| **health != BackendHealth::Serving)
        .map(|(name, _)| *name)
        .collect();
    if database != DatabaseHealth::Reachable {
        down.push("database");
    }
    if down.is_empty() {
        return Json(Readiness {
            status: "ready",
            backends,
            database,
        })
        .into_response();
    }
    tracing::warn!(unavailable = ?down, "not ready");
    not_ready(&down, &backends, database)
}

async fn check_database(state: &AppState) -> DatabaseHealth {
    match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, state.database().ping()).await {
        Err(_elapsed) => DatabaseHealth::Timeout,
        Ok(Err(error)) => {
            error.log();
            DatabaseHealth::Unreachable
        }
        Ok(Ok(())) => DatabaseHealth::Reachable,
    }
}

async fn check(backend: &Backend) -> (&'static str, BackendHealth) {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: backend.health_service.to_owned(),
    });
    request.set_timeout(HEALTH_CHECK_TIMEOUT);
    let mut client = HealthClient::new(backend.channel.clone());
    let health = match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, client.check(request)).await {
        Err(_elapsed) => BackendHealth::Timeout,
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => BackendHealth::Timeout,
        Ok(Err(_status)) => BackendHealth::Unreachable,
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving => {
            BackendHealth::Serving
        }
        Ok(Ok(_not_serving)) => BackendHealth::NotServing,
    };
    (backend.name, health)
}

/// 503 problem with `backends` and `database` extension members.
fn not_ready(
    down: &[&str],
    backends: &BTreeMap<&'static str, BackendHealth>,
    database: DatabaseHealth,
) -> Response {
    let problem = Problem::new(
        ErrorCode::Unavailable,
        format!("not ready: {} unavailable", down.join(", ")),
    );
    let mut body = serde_json::to_value(problem).unwrap_or_default();
    if let (Some(object), Ok(backends), Ok(database)) = (
        body.as_object_mut(),
        serde_json::to_value(backends),
        serde_json::to_value(database),
    ) {
        object.insert("backends".to_owned(), backends);
        object.insert("database".to_owned(), database);
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}
