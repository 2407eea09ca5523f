//! Health of the gateway, for orchestrators and for people.
//!
//! - `/healthz` (liveness): the process answers.
//! - `/readyz` (readiness): this gateway can serve, which depends only on itself:
//!   its own database answers (its token keys and settings were checked at
//!   start-up, or it would not be running). A backend being down does not make the
//!   gateway unready: every gateway replica would be taken out of service at once
//!   and the calls that need no such backend would fail too. Those calls answer 503
//!   with `Retry-After` instead, and each backend's own readiness is its gRPC health.
//! - `/status` (dependencies, for people and dashboards, not for probes): what the
//!   gateway's database and each backend answer right now. Always `200`; `status`
//!   says `ok` or `degraded`. It calls every backend, so unlike the probes it is
//!   rate limited.
//!
//! None of them needs authentication.

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

use super::paths;
use crate::extract::Json;
use crate::openapi::ProblemBody;
use crate::state::{AppState, Backend};

/// How long a backend or the database has to answer a health check.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The gateway process is alive.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    status: &'static str,
}

/// What a backend answered to the gRPC health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackendHealth {
    /// The service is serving.
    Serving,
    /// The service answered but is not serving (its database is unreachable, or it
    /// is shutting down).
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

/// This gateway can serve requests.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// Health of the gateway's own database.
    database: DatabaseHealth,
}

/// Overall state of the deployment as this gateway sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OverallStatus {
    /// The gateway's database answers and every backend is serving.
    Ok,
    /// Something is down: calls that need it answer 503 until it is back.
    Degraded,
}

/// What the gateway and each service it calls answer right now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DependencyStatus {
    /// `ok` when everything below is serving, `degraded` otherwise.
    status: OverallStatus,
    /// Health of the gateway's own database (what `/readyz` follows).
    database: DatabaseHealth,
    /// Health of each backend by name (each one's own readiness: its database).
    backends: BTreeMap<&'static str, BackendHealth>,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = paths::HEALTHZ,
    tag = "operations",
    security(()),
    responses((status = 200, description = "The gateway is alive", body = Liveness))
)]
pub(crate) async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Readiness of this gateway alone: its own database answers a query. Backends
/// are not checked (see `/status`): with one down, the gateway still serves every
/// call that does not need it, and answers the others 503 with `Retry-After`.
#[utoipa::path(
    get,
    path = paths::READYZ,
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The gateway can serve requests", body = Readiness),
        (status = 503, description = "The gateway's own database does not answer; \
            `database` says how",
            body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let database = check_database(&state).await;
    if database == DatabaseHealth::Reachable {
        return Json(Readiness {
            status: "ready",
            database,
        })
        .into_response();
    }
    tracing::warn!(?database, "not ready: the gateway database does not answer");
    not_ready(database)
}

/// The gateway's database and every backend, for people and dashboards; never
/// use it as a probe (one backend down would take every gateway out of service).
#[utoipa::path(
    get,
    path = paths::STATUS,
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "What the gateway's database and each backend \
            answer right now; `status` is `degraded` when any of them is down",
            body = DependencyStatus),
        (status = 429, description = "Too many requests from this address",
            body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn status(State(state): State<AppState>) -> Json<DependencyStatus> {
    let checks = futures::future::join_all(state.backends().all().map(check));
    let (results, database) = tokio::join!(checks, check_database(&state));
    let backends: BTreeMap<&'static str, BackendHealth> = results.into_iter().collect();
    let all_serving = database == DatabaseHealth::Reachable
        && backends
            .values()
            .all(|health| *health == BackendHealth::Serving);
    let status = if all_serving {
        OverallStatus::Ok
    } else {
        OverallStatus::Degraded
    };
    Json(DependencyStatus {
        status,
        database,
        backends,
    })
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

/// 503 problem with a `database` extension member.
fn not_ready(database: DatabaseHealth) -> Response {
    let problem = Problem::new(
        ErrorCode::Unavailable,
        "not ready: the gateway database is unavailable",
    );
    let mut body = serde_json::to_value(problem).unwrap_or_default();
    if let (Some(object), Ok(database)) = (body.as_object_mut(), serde_json::to_value(database)) {
        object.insert("database".to_owned(), database);
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}
