//! RFC 9457 problem details for the REST side.

use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::{ErrorCode, HavenError};

/// Media type of every REST error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    /// URI naming the kind of problem, e.g. `https://haven.dev/problems/not_found`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence, safe to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Request id, to find the matching log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Invalid fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemFieldError>,
}

/// One invalid field of a problem.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProblemFieldError {
    /// Field path.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem for a code with a detail message.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let status = code.http_status();
        Self {
            problem_type: format!("https://haven.dev/problems/{}", code.as_str()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            request_id: None,
            errors: Vec::new(),
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

impl From<&HavenError> for Problem {
    fn from(error: &HavenError) -> Self {
        let mut problem = Problem::new(error.code(), error.message());
        problem.errors = error
            .violations()
            .iter()
            .map(|violation| ProblemFieldError {
                field: violation.field.clone(),
                message: violation.description.clone(),
            })
            .collect();
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = http::StatusCode::from_u16(self.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(PROBLEM_JSON),
        );
        if status == http::StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl IntoResponse for HavenError {
    fn into_response(self) -> Response {
        self.log();
        Problem::from(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_carries_status_type_and_field_errors() {
        let error = HavenError::invalid_field("limit", "must be at most 100");
        let problem = Problem::from(&error);
        assert_eq!(problem.status, 400);
        assert_eq!(
            problem.problem_type,
            "https://haven.dev/problems/invalid_argument"
        );
        assert_eq!(problem.errors[0].field, "limit");
        let response = error.into_response();
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
