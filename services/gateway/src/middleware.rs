//! Small middleware of the gateway: request ids, problem bodies, cache control, and
//! the size limit of credentials.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use haven_error::{PROBLEM_JSON, Problem};
use http::{HeaderName, HeaderValue, StatusCode, header};
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::error::problem_for_status;

/// Header carrying the request id, in both directions and to the services.
pub(crate) const X_REQUEST_ID: &str = "x-request-id";
/// `Retry-After` of every `503`: long enough for a killed backend's replacement or
/// another replica to take the call, short enough not to stall a client.
pub(crate) const UNAVAILABLE_RETRY_AFTER_SECONDS: &str = "1";
/// Problem bodies are small; anything larger is not ours and is replaced.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// The `x-request-id` header name.
pub(crate) fn x_request_id() -> HeaderName {
    HeaderName::from_static(X_REQUEST_ID)
}

/// Whether an incoming request id is kept (it ends up in logs, error bodies and the
/// audit trail): the one rule of [`haven_auth::request_id`], which every gRPC
/// service applies too.
pub(crate) fn is_sane_request_id(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(haven_auth::request_id::is_valid)
}

/// Drops an incoming `x-request-id` that is not a sane token, so a fresh one is
/// generated instead.
pub(crate) async fn drop_insane_request_id(mut request: Request) -> Request {
    let insane = request
        .headers()
        .get_all(X_REQUEST_ID)
        .iter()
        .enumerate()
        .any(|(index, value)| index > 0 || !is_sane_request_id(value));
    if insane {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

/// Generates random (v4) UUIDs as request ids.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// Makes every error response a problem+json body carrying the request id: fills
/// `request_id` into problems from handlers and extractors, and replaces the bodies
/// of error responses from layers that do not speak problem+json. Every `503` gets
/// a `Retry-After`.
pub(crate) async fn problem_details(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    let (mut parts, body) = response.into_parts();
    let mut problem = None;
    if is_problem
        && let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await
        && let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&bytes)
    {
        problem = Some(object);
    }
    // Keep extension members (e.g. readiness details) by editing the JSON object.
    let mut problem = match problem {
        Some(object) => object,
        None => match serde_json::to_value(problem_for_status(status)) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => serde_json::Map::new(),
        },
    };
    if let Some(request_id) = request_id {
        problem.insert(
            "request_id".to_owned(),
            serde_json::Value::String(request_id),
        );
    }
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    // A 503 is always worth retrying: a backend is restarting, draining or away.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        parts
            .headers
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER_SECONDS));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Refuses a request whose `Authorization` header is longer than
/// [`haven_server::MAX_AUTHORIZATION_BYTES`] with 431, before the token is verified,
/// rate-limited or forwarded: the services would refuse it too, in a way no REST
/// client could read.
pub(crate) async fn refuse_oversized_authorization(request: Request, next: Next) -> Response {
    let values = request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes);
    if !haven_server::authorization_too_large(values) {
        return next.run(request).await;
    }
    let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    Problem {
        problem_type: "about:blank".to_owned(),
        title: status
            .canonical_reason()
            .unwrap_or("Request Header Fields Too Large")
            .to_owned(),
        status: status.as_u16(),
        detail: Some(haven_server::oversized_authorization_message()),
        request_id: None,
        errors: Vec::new(),
    }
    .into_response()
}

/// `Cache-Control: no-store` on everything under `/v1`: responses may carry
/// personal data and must not be kept by browsers or proxies.
pub(crate) async fn no_store_under_v1(request: Request, next: Next) -> Response {
    let under_v1 = request.uri().path().starts_with("/v1/") || request.uri().path() == "/v1";
    let mut response = next.run(request).await;
    if under_v1 {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_tokens_are_sane_request_ids() {
        for sane in ["abc", "0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e", "req-1-2-3"] {
            assert!(
                is_sane_request_id(&HeaderValue::from_static(sane)),
                "{sane}"
            );
        }
        let long = "a".repeat(haven_auth::request_id::MAX_LEN + 1);
        for insane in [
            "",
            "has space",
            "semi;colon",
            "quote\"",
            "req_1.2:3",
            long.as_str(),
        ] {
            assert!(
                !is_sane_request_id(&HeaderValue::from_str(insane).unwrap()),
                "{insane}"
            );
        }
    }
}
