//! One error model for every Haven transport.
//!
//! [`ErrorCode`] is matched exhaustively to both an HTTP status and a gRPC code, so a
//! new variant cannot be added without deciding what each transport shows. A
//! [`HavenError`] carries a code, a message that is safe to show to a client, optional
//! field violations, and (for logs only) the internal cause. Over gRPC it travels as a
//! `google.rpc.Status` with `BadRequest` details; over REST as an RFC 9457
//! `application/problem+json` body ([`Problem`]).

pub mod fields;
mod problem;
pub mod retry;

use std::fmt;

pub use problem::{PROBLEM_JSON, Problem, ProblemFieldError};
use tonic_types::{ErrorDetails, StatusExt};

/// Every kind of failure a client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid.
    InvalidArgument,
    /// No credentials, or credentials that do not verify.
    Unauthenticated,
    /// Authenticated, but the policy does not allow the action.
    PermissionDenied,
    /// The resource does not exist or is outside the caller's scope.
    NotFound,
    /// The resource already exists.
    AlreadyExists,
    /// The resource is not in a state that allows the action.
    Conflict,
    /// An `If-Match` precondition did not hold (stale version).
    PreconditionFailed,
    /// An update came without the required `If-Match`.
    PreconditionRequired,
    /// The body is well-formed but cannot be processed (e.g. idempotency key reuse).
    Unprocessable,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// The request body has a media type the endpoint does not accept.
    UnsupportedMediaType,
    /// The caller sent too many requests.
    RateLimited,
    /// A dependency is unreachable; retrying later may succeed.
    Unavailable,
    /// The deadline passed before the work finished.
    DeadlineExceeded,
    /// A bug or an unexpected failure; details are only in the logs.
    Internal,
}

impl ErrorCode {
    /// The HTTP status a REST client sees.
    pub fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::PermissionDenied => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::AlreadyExists | Self::Conflict => S::CONFLICT,
            Self::PreconditionFailed => S::PRECONDITION_FAILED,
            Self::PreconditionRequired => S::PRECONDITION_REQUIRED,
            Self::Unprocessable => S::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => S::TOO_MANY_REQUESTS,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code a gRPC client sees.
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code as C;
        match self {
            Self::InvalidArgument => C::InvalidArgument,
            Self::Unauthenticated => C::Unauthenticated,
            Self::PermissionDenied => C::PermissionDenied,
            Self::NotFound => C::NotFound,
            Self::AlreadyExists => C::AlreadyExists,
            Self::Conflict | Self::PreconditionRequired => C::FailedPrecondition,
            Self::PreconditionFailed => C::Aborted,
            Self::Unprocessable => C::InvalidArgument,
            Self::PayloadTooLarge => C::ResourceExhausted,
            Self::UnsupportedMediaType => C::InvalidArgument,
            Self::RateLimited => C::ResourceExhausted,
            Self::Unavailable => C::Unavailable,
            Self::DeadlineExceeded => C::DeadlineExceeded,
            Self::Internal => C::Internal,
        }
    }

    /// Stable machine-readable name, used as the `reason` of gRPC `ErrorInfo` and in
    /// the problem `type` URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::PreconditionRequired => "precondition_required",
            Self::Unprocessable => "unprocessable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal => "internal",
        }
    }

    /// Every variant, for exhaustive tests and documentation.
    pub const ALL: [ErrorCode; 15] = [
        Self::InvalidArgument,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::NotFound,
        Self::AlreadyExists,
        Self::Conflict,
        Self::PreconditionFailed,
        Self::PreconditionRequired,
        Self::Unprocessable,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::Unavailable,
        Self::DeadlineExceeded,
        Self::Internal,
    ];

    fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == reason)
    }

    /// Best guess for a gRPC status that carries no Haven `ErrorInfo`.
    fn from_grpc_code(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::InvalidArgument | C::OutOfRange => Self::InvalidArgument,
            C::Unauthenticated => Self::Unauthenticated,
            C::PermissionDenied => Self::PermissionDenied,
            C::NotFound => Self::NotFound,
            C::AlreadyExists => Self::AlreadyExists,
            C::FailedPrecondition => Self::Conflict,
            C::Aborted => Self::PreconditionFailed,
            C::ResourceExhausted => Self::RateLimited,
            C::Unavailable => Self::Unavailable,
            C::DeadlineExceeded | C::Cancelled => Self::DeadlineExceeded,
            C::Ok | C::Unknown | C::Internal | C::Unimplemented | C::DataLoss => Self::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Field path in the request, e.g. `referral_source`.
    pub field: String,
    /// What is wrong, safe to show.
    pub description: String,
}

/// The error type every Haven service and the gateway return.
#[derive(Debug)]
pub struct HavenError {
    code: ErrorCode,
    message: String,
    violations: Vec<FieldViolation>,
    source: Option<Cause>,
}

/// The internal cause of an error, kept for logs and never shown to clients.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with a [`HavenError`].
pub type HavenResult<T> = Result<T, HavenError>;

const ERROR_DOMAIN: &str = "haven";

impl HavenError {
    /// An error with a client-safe message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            violations: Vec::new(),
            source: None,
        }
    }

    /// An invalid field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let description = description.into();
        let field = field.into();
        Self::new(
            ErrorCode::InvalidArgument,
            format!("invalid field `{field}`: {description}"),
        )
        .with_violation(field, description)
    }

    /// The resource does not exist (or is outside the caller's scope).
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// An unexpected failure. The cause is logged, the client sees a generic message.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".to_owned(),
            violations: Vec::new(),
            source: Some(cause.into()),
        }
    }

    /// A dependency could not be reached.
    pub fn unavailable(what: &str, cause: impl Into<Cause>) -> Self {
        Self {
            code: ErrorCode::Unavailable,
            message: format!("{what} is unavailable, try again later"),
            violations: Vec::new(),
            source: Some(cause.into()),
        }
    }

    /// Adds a field violation.
    pub fn with_violation(
        mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
        self
    }

    /// The same error with `prefix` taken off the fields it names (in the message
    /// too): a REST face whose fields are flat answers a backend that nests them,
    /// e.g. `scope.region` as `region`.
    #[must_use]
    pub fn without_field_prefix(mut self, prefix: &str) -> Self {
        for violation in &mut self.violations {
            if let Some(flat) = violation.field.strip_prefix(prefix) {
                violation.field = flat.to_owned();
            }
        }
        self.message = self.message.replace(&format!("`{prefix}"), "`");
        self
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The client-safe message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Field violations, if any.
    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// Logs the error with its full cause chain: server errors at `error`, client
    /// errors at `debug`.
    pub fn log(&self) {
        let cause = self
            .source
            .as_ref()
            .map(|source| cause_chain(source.as_ref()));
        if matches!(self.code, ErrorCode::Internal | ErrorCode::Unavailable) {
            tracing::error!(code = %self.code, message = %self.message, cause = cause.as_deref(), "request failed");
        } else {
            tracing::debug!(code = %self.code, message = %self.message, "request rejected");
        }
    }

    /// Converts into a gRPC status with `ErrorInfo` and `BadRequest` details.
    pub fn into_status(self) -> tonic::Status {
        self.log();
        let mut details = ErrorDetails::new();
        details.set_error_info(
            self.code.as_str(),
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        if !self.violations.is_empty() {
            details.set_bad_request(
                self.violations
                    .iter()
                    .map(|violation| {
                        tonic_types::FieldViolation::new(&violation.field, &violation.description)
                    })
                    .collect::<Vec<_>>(),
            );
        }
        tonic::Status::with_error_details(self.code.grpc_code(), self.message, details)
    }

    /// Reads a status received from a Haven service (or any gRPC server) back into
    /// an error, keeping its code and field violations.
    ///
    /// A status the gRPC client made itself, because the call never got an answer
    /// (connection refused, reset or closed with the call in flight, an HTTP/2
    /// protocol error, a stream cancelled when the server went away), is
    /// [`ErrorCode::Unavailable`]: retrying, on another replica or once the service
    /// is back, may succeed. Only the client's own deadline expiring is
    /// [`ErrorCode::DeadlineExceeded`]. A status the service sent keeps its code.
    pub fn from_status(status: &tonic::Status) -> Self {
        if let Some(error) = Self::from_transport_failure(status) {
            return error;
        }
        let details = status.get_error_details();
        let code = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| ErrorCode::from_reason(&info.reason))
            .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code()));
        let message = match code {
            // Never pass through text of an internal failure of another process.
            ErrorCode::Internal => "internal error".to_owned(),
            ErrorCode::Unavailable if details.error_info().is_none() => {
                "a service is unavailable, try again later".to_owned()
            }
            _ => status.message().to_owned(),
        };
        let violations = details
            .bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .iter()
                    .map(|violation| FieldViolation {
                        field: violation.field.clone(),
                        description: violation.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            code,
            message,
            violations,
            source: None,
        }
    }
}

impl HavenError {
    /// The error for a status the gRPC client produced locally, with the transport
    /// failure as its cause; `None` for a status that came from the service.
    ///
    /// tonic attaches the underlying error (hyper, h2, I/O, a connection error or
    /// the expired timeout) as the status's source whenever it builds a status from
    /// a failure of its own; a status decoded from the service's answer has none.
    fn from_transport_failure(status: &tonic::Status) -> Option<Self> {
        let cause = std::error::Error::source(status)?;
        let mut timed_out = false;
        let mut current = Some(cause);
        while let Some(link) = current {
            timed_out |= link.is::<tonic::TimeoutExpired>();
            current = link.source();
        }
        let (code, message) = if timed_out {
            (
                ErrorCode::DeadlineExceeded,
                "a service did not answer in time",
            )
        } else {
            (
                ErrorCode::Unavailable,
                "a service is unavailable, try again later",
            )
        };
        let chain = format!(
            "{:?}: {}: {}",
            status.code(),
            status.message(),
            cause_chain(cause)
        );
        Some(Self {
            code,
            message: message.to_owned(),
            violations: Vec::new(),
            source: Some(Box::new(TransportFailure(chain))),
        })
    }
}

/// Why a call failed in the transport, for logs only.
#[derive(Debug)]
struct TransportFailure(String);

impl fmt::Display for TransportFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for TransportFailure {}

fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        current = cause.source();
    }
    chain
}

impl fmt::Display for HavenError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HavenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|source| source.as_ref() as _)
    }
}

impl From<HavenError> for tonic::Status {
    fn from(error: HavenError) -> Self {
        error.into_status()
    }
}

impl From<tonic::Status> for HavenError {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_grpc() {
        for code in ErrorCode::ALL {
            let status = HavenError::new(code, "something").into_status();
            assert_eq!(status.code(), code.grpc_code());
            assert_eq!(HavenError::from_status(&status).code(), code, "{code}");
        }
    }

    #[test]
    fn every_code_has_a_distinct_name_and_an_error_status() {
        let mut names = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(names.insert(code.as_str()));
            assert!(code.http_status().is_client_error() || code.http_status().is_server_error());
        }
    }

    #[test]
    fn field_violations_travel_as_bad_request_details() {
        let status = HavenError::invalid_field("referral_source", "must be set").into_status();
        let error = HavenError::from_status(&status);
        assert_eq!(error.code(), ErrorCode::InvalidArgument);
        assert_eq!(
            error.violations(),
            &[FieldViolation {
                field: "referral_source".into(),
                description: "must be set".into()
            }]
        );
    }

    #[test]
    fn a_call_that_never_got_an_answer_is_unavailable() {
        for cause in [
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            std::io::Error::other("connection closed before message completed"),
        ] {
            // What tonic builds when the connection fails with the call in flight.
            let status = tonic::Status::from_error(Box::new(cause));
            let error = HavenError::from_status(&status);
            assert_eq!(error.code(), ErrorCode::Unavailable, "{status:?}");
            assert_eq!(error.code().http_status().as_u16(), 503);
            assert!(
                !error.message().contains("connection"),
                "{}",
                error.message()
            );
        }
    }

    #[test]
    fn only_the_clients_own_deadline_is_deadline_exceeded() {
        let expired = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            HavenError::from_status(&expired).code(),
            ErrorCode::DeadlineExceeded
        );
        // A cancellation the service itself sent keeps its meaning.
        let sent = tonic::Status::cancelled("Timeout expired");
        assert_eq!(
            HavenError::from_status(&sent).code(),
            ErrorCode::DeadlineExceeded
        );
        // A status the service sent is never second-guessed.
        let sent = tonic::Status::unknown("transport error");
        assert_eq!(HavenError::from_status(&sent).code(), ErrorCode::Internal);
    }

    #[test]
    fn internal_causes_never_reach_the_client() {
        let status = HavenError::internal(std::io::Error::other("disk /secret full")).into_status();
        assert_eq!(status.message(), "internal error");
        let plain = tonic::Status::internal("stack trace with secrets");
        assert_eq!(HavenError::from_status(&plain).message(), "internal error");
    }
}
