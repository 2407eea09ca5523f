//! Errors the gateway itself produces: failed backend calls, unknown routes, wrong
//! methods, panics, and error responses of tower layers that know nothing of
//! problem+json.

use std::any::Any;

use axum::response::{IntoResponse, Response};
use haven_error::{ErrorCode, HavenError, Problem};
use http::StatusCode;
use tower_http::catch_panic::ResponseForPanic;

/// Maps a failed gRPC call to `backend` into the error the REST client sees, keeping
/// the service's code and field violations but never its internal text.
pub(crate) fn backend_error(backend: &'static str) -> impl Fn(tonic::Status) -> HavenError {
    move |status| {
        let error = HavenError::from_status(&status);
        tracing::debug!(
            backend,
            grpc_code = ?status.code(),
            code = %error.code(),
            "backend call failed"
        );
        error
    }
}

/// Fallback for paths no route matches.
pub(crate) async fn route_not_found() -> HavenError {
    HavenError::new(ErrorCode::NotFound, "no such resource")
}

/// Fallback for a known path called with a method it does not support.
pub(crate) async fn method_not_allowed() -> Response {
    Problem {
        problem_type: "about:blank".to_owned(),
        title: "Method Not Allowed".to_owned(),
        status: StatusCode::METHOD_NOT_ALLOWED.as_u16(),
        detail: Some("this resource does not support the method".to_owned()),
        request_id: None,
        errors: Vec::new(),
    }
    .into_response()
}

/// The problem for an error response that came without one, e.g. from a tower layer
/// (body limit, timeout).
pub(crate) fn problem_for_status(status: StatusCode) -> Problem {
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body is larger than allowed",
        StatusCode::GATEWAY_TIMEOUT => "the request took longer than allowed",
        StatusCode::NOT_FOUND => "no such resource",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    match ErrorCode::ALL
        .into_iter()
        .find(|code| code.http_status() == status)
    {
        Some(code) => Problem::new(code, detail),
        None => Problem {
            problem_type: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            request_id: None,
            errors: Vec::new(),
        },
    }
}

/// Answers a handler panic with a generic 500 problem and logs it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PanicToProblem;

impl ResponseForPanic for PanicToProblem {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(
        &mut self,
        panic: Box<dyn Any + Send + 'static>,
    ) -> http::Response<Self::ResponseBody> {
        let message = panic
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(panic = %message, "request handler panicked");
        HavenError::new(ErrorCode::Internal, "internal error").into_response()
    }
}
