//! Extractors whose every rejection is a problem+json naming what is wrong: JSON
//! bodies, query strings, path ids, and the authenticated caller with what must be
//! forwarded to the services.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use haven_auth::TokenVerifier;
use haven_auth::http::Authenticated;
use haven_error::{ErrorCode, HavenError};
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use uuid::Uuid;

use crate::middleware::X_REQUEST_ID;
use crate::state::AppState;

/// A JSON request body (`Content-Type: application/json`) or response body.
///
/// Rejections: no JSON content type → 415; malformed JSON → 400; JSON that is not
/// an object, or an object of the wrong shape → 400 naming the field; body over
/// the limit → 413.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub(crate) T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HavenError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(HavenError::new(
                ErrorCode::UnsupportedMediaType,
                "expected a body with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    HavenError::new(
                        ErrorCode::PayloadTooLarge,
                        "request body is larger than allowed",
                    )
                } else {
                    HavenError::new(ErrorCode::InvalidArgument, "request body could not be read")
                }
            })?;
        // serde also reads a struct from an array; the API only takes objects.
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first.is_some_and(|byte| *byte != b'{') {
            return Err(HavenError::invalid_field("body", "must be a JSON object"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json`, or any `application/*+json`, with optional parameters.
fn has_json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: &JsonRejection) -> HavenError {
    match rejection {
        JsonRejection::JsonDataError(_) => serde_field_error(&rejection.body_text(), "body"),
        _ => HavenError::new(
            ErrorCode::InvalidArgument,
            format!(
                "request body is not valid JSON: {}",
                serde_message(&rejection.body_text())
            ),
        ),
    }
}

/// A query string. Rejections name the offending parameter.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> HavenError {
    serde_field_error(&rejection.body_text(), "query")
}

/// The `{id}` path segment, which must be a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathId(pub(crate) Uuid);

impl<S> FromRequestParts<S> for PathId
where
    S: Send + Sync,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = || HavenError::invalid_field("id", "must be a UUID");
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid())?;
        Uuid::try_parse(&raw).map(Self).map_err(|_| invalid())
    }
}

/// The named segments of a nested route's path, e.g. `id` and `service_id` of
/// `/v1/cases/{id}/services/{service_id}`.
async fn path_segments<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<Vec<(String, String)>, HavenError> {
    Path::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map(|Path(segments)| segments)
        .map_err(|_| HavenError::invalid_field("path", "could not be read"))
}

/// The segment `name`, which must be a UUID.
fn uuid_segment(segments: &[(String, String)], name: &str) -> Result<Uuid, HavenError> {
    segments
        .iter()
        .find(|(segment, _)| segment == name)
        .and_then(|(_, raw)| Uuid::try_parse(raw).ok())
        .ok_or_else(|| HavenError::invalid_field(name, "must be a UUID"))
}

/// The `{id}` segment and one more id segment of a record nested in it, e.g.
/// `{service_id}` in `/v1/cases/{id}/services/{service_id}`. Both must be UUIDs; a
/// rejection names the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathIds(pub(crate) Uuid, pub(crate) Uuid);

impl<S> FromRequestParts<S> for PathIds
where
    S: Send + Sync,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let segments = path_segments(parts, state).await?;
        let id = uuid_segment(&segments, "id")?;
        let nested = segments
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| *name != "id")
            .ok_or_else(|| HavenError::internal("route has no nested id segment"))?;
        Ok(Self(id, uuid_segment(&segments, nested)?))
    }
}

/// The path of a plan version, `/v1/cases/{id}/plans/{plan_version}`, and of an
/// action in it (`.../actions/{action_id}`). A rejection names the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlanPath {
    /// The case.
    pub(crate) case_id: Uuid,
    /// The plan version, 1 or more.
    pub(crate) plan_version: u32,
    /// The action, on routes that name one.
    pub(crate) action_id: Option<Uuid>,
}

impl<S> FromRequestParts<S> for PlanPath
where
    S: Send + Sync,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let segments = path_segments(parts, state).await?;
        let case_id = uuid_segment(&segments, "id")?;
        let plan_version = segments
            .iter()
            .find(|(name, _)| name == "plan_version")
            .and_then(|(_, raw)| raw.parse::<u32>().ok())
            .filter(|version| *version > 0)
            .ok_or_else(|| {
                HavenError::invalid_field("plan_version", "must be a plan version, 1 or more")
            })?;
        let action_id = if segments.iter().any(|(name, _)| name == "action_id") {
            Some(uuid_segment(&segments, "action_id")?)
        } else {
            None
        };
        Ok(Self {
            case_id,
            plan_version,
            action_id,
        })
    }
}

/// The authenticated caller of a `/v1` route, and what every gRPC call made on its
/// behalf carries: its bearer token, the request id, the trace context and the
/// deadline left of the request's time budget.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    authenticated: Authenticated,
    request_id: Option<AsciiMetadataValue>,
    purpose: Option<AsciiMetadataValue>,
    deadline: Instant,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    AppState: FromRef<S>,
    TokenVerifier: FromRef<S>,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let started = Instant::now();
        let authenticated = Authenticated::from_request_parts(parts, state).await?;
        authorize(parts, &authenticated)?;
        let request_id = parts
            .headers
            .get(X_REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| MetadataValue::try_from(value).ok());
        let purpose = parts
            .headers
            .get(haven_auth::grpc::PURPOSE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| MetadataValue::try_from(value).ok());
        let budget = AppState::from_ref(state).call_timeout();
        Ok(Self {
            authenticated,
            request_id,
            purpose,
            deadline: started + budget,
        })
    }
}

/// Checks the route's action against the caller's roles. A route without a rule is
/// refused: deny by default.
fn authorize(parts: &Parts, authenticated: &Authenticated) -> Result<(), HavenError> {
    let path = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
        .unwrap_or_default();
    match crate::policy::required_action(parts.method.as_str(), path) {
        Some(action) => authenticated.principal.require(action),
        None => {
            tracing::error!(method = %parts.method, path, "route has no policy rule; refusing");
            Err(HavenError::new(
                ErrorCode::PermissionDenied,
                "this route is not open to anyone",
            ))
        }
    }
}

impl Caller {
    /// A gRPC request carrying `message` and the caller's credentials, request id,
    /// trace context and remaining deadline. Call it inside the handler's span.
    pub(crate) fn grpc_request<T>(&self, message: T) -> Result<tonic::Request<T>, HavenError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(1) {
            return Err(HavenError::new(
                ErrorCode::DeadlineExceeded,
                "the request ran out of time",
            ));
        }
        let mut request = tonic::Request::new(message);
        haven_auth::grpc::attach_bearer(&mut request, &self.authenticated.bearer)?;
        if let Some(request_id) = &self.request_id {
            request
                .metadata_mut()
                .insert(X_REQUEST_ID, request_id.clone());
        }
        if let Some(purpose) = &self.purpose {
            request
                .metadata_mut()
                .insert(haven_auth::grpc::PURPOSE, purpose.clone());
        }
        haven_telemetry::inject_trace_context(request.metadata_mut());
        request.set_timeout(remaining);
        Ok(request)
    }
}

/// Turns a serde error of a body or query (`<path>: <message>`, as axum reports it)
/// into an invalid-field error naming the field.
fn serde_field_error(body_text: &str, fallback_field: &str) -> HavenError {
    let message = serde_message(body_text);
    let (path, description) = match message.split_once(": ") {
        Some((path, description)) if is_field_path(path) => (Some(path), description),
        _ => (None, message),
    };
    // A missing or unknown field is reported at the level of the enclosing object.
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| description.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let field = match (path, named) {
        // An unknown field is already the last segment of the path.
        (Some(path), Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (Some(path), Some(name)) => format!("{path}.{name}"),
        (Some(path), None) => path.to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => fallback_field.to_owned(),
    };
    HavenError::invalid_field(field, description)
}

/// The serde part of an axum rejection text, without axum's prefix and without
/// serde_json's ` at line L column C` suffix.
fn serde_message(body_text: &str) -> &str {
    let message = body_text
        .split_once(": ")
        .map_or(body_text, |(_, message)| message);
    message
        .rfind(" at line ")
        .map_or(message, |position| &message[..position])
}

fn is_field_path(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: &HavenError) -> &str {
        &error.violations()[0].field
    }

    #[test]
    fn serde_errors_name_the_field() {
        let prefix = "Failed to deserialize the JSON body into the target type: ";
        let cases = [
            (
                "referral_source: unknown variant `pigeon`, expected one of `hotline`, `police` at line 1 column 30",
                "referral_source",
            ),
            (
                "missing field `referral_source` at line 1 column 2",
                "referral_source",
            ),
            (
                "unknown field `nickname`, expected one of `a`, `b` at line 1 column 12",
                "nickname",
            ),
            (
                "is_minor: invalid type: string \"yes\", expected a boolean at line 1 column 20",
                "is_minor",
            ),
            (
                "consents[0]: missing field `purpose`",
                "consents[0].purpose",
            ),
            (
                "nickname: unknown field `nickname`, expected one of `a`",
                "nickname",
            ),
            (
                "invalid type: integer `1`, expected struct CreateScreening",
                "body",
            ),
        ];
        for (text, field) in cases {
            let error = serde_field_error(&format!("{prefix}{text}"), "body");
            assert_eq!(field_of(&error), field, "{text}");
            assert!(!error.message().contains("at line"), "{}", error.message());
        }
        let mut headers = http::HeaderMap::new();
        for (content_type, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(content_type),
            );
            assert_eq!(has_json_content_type(&headers), json, "{content_type}");
        }
        assert!(!has_json_content_type(&http::HeaderMap::new()));
        let error = serde_field_error(
            "Failed to deserialize query string: organization_id: UUID parsing failed: invalid length",
            "query",
        );
        assert_eq!(field_of(&error), "organization_id");
        assert_eq!(
            error.violations()[0].description,
            "UUID parsing failed: invalid length"
        );
    }
}

/// The version an `If-Match: "<version>"` header names, for updates that must not
/// overwrite a change the caller has not seen: `428` without the header, `400` when
/// it is not an ETag this API returned (the service answers `412` for a stale one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfMatch(pub(crate) u64);

impl<S> FromRequestParts<S> for IfMatch
where
    S: Send + Sync,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(http::header::IF_MATCH) else {
            return Err(HavenError::new(
                ErrorCode::PreconditionRequired,
                "send If-Match with the ETag you read",
            ));
        };
        value
            .to_str()
            .ok()
            .map(|value| value.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|version| version.parse::<u64>().ok())
            .filter(|version| *version > 0)
            .map(Self)
            .ok_or_else(|| {
                HavenError::invalid_field("if-match", "must be an ETag this API returned")
            })
    }
}
