//! The OpenAPI side of `Idempotency-Key`: the optional header, the
//! `Idempotency-Replayed` response header and the 409 and 422 answers, added to
//! exactly the operations the route table classes
//! [`Keyed`](crate::routes::Idempotency::Keyed).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Header, HeaderBuilder, ObjectBuilder, RefOr, Type};
use utoipa::{IntoParams, IntoResponses};

use super::IDEMPOTENCY_REPLAYED;
use crate::openapi::ProblemBody;
use crate::routes::{Idempotency, ROUTES, operation_mut};

/// The optional header, as documented on each replayable operation.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct IdempotencyKeyHeader {
    /// Makes retrying this create safe: a retry with the same key and the same
    /// request gets the record the first request created (with
    /// `Idempotency-Replayed: true`) instead of a second one, even if the first answer
    /// was lost. The key is scoped to the caller; use a fresh random value (e.g. a
    /// UUID) per create.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 128,
        pattern = "^[ -~]+$"
    )]
    idempotency_key: Option<String>,
}

/// Answers of a replayable operation that only idempotency produces.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum IdempotencyErrors {
    /// A request with this `Idempotency-Key` was in progress at that very moment.
    #[response(
        status = 409,
        content_type = "application/problem+json",
        headers(("retry-after" = u64, description = "Seconds to wait before retrying"))
    )]
    InProgress(ProblemBody),
    /// This `Idempotency-Key` was used with a different request.
    #[response(status = 422, content_type = "application/problem+json")]
    DifferentRequest(ProblemBody),
}

/// Documents the header, the `Idempotency-Replayed` response header and the 409 and
/// 422 answers on every replayable operation.
pub(crate) fn document(openapi: &mut utoipa::openapi::OpenApi) {
    let keyed = ROUTES
        .iter()
        .filter(|route| route.idempotency == Idempotency::Keyed);
    for route in keyed {
        let operation = openapi
            .paths
            .paths
            .get_mut(route.path)
            .and_then(|item| operation_mut(item, route.method));
        debug_assert!(
            operation.is_some(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        if let Some(operation) = operation {
            document_operation(operation);
        }
    }
}

fn document_operation(operation: &mut Operation) {
    operation.parameters.get_or_insert_with(Vec::new).extend(
        IdempotencyKeyHeader::into_params(|| None)
            .into_iter()
            .map(RefOr::T),
    );
    for (status, response) in IdempotencyErrors::responses() {
        operation
            .responses
            .responses
            .entry(status)
            .or_insert(response);
    }
    for (status, response) in &mut operation.responses.responses {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response
                .headers
                .insert(IDEMPOTENCY_REPLAYED.to_owned(), RefOr::T(replayed_header()));
        }
    }
}

fn replayed_header() -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
        .description(Some(
            "`true` when an earlier request with the same `Idempotency-Key` created the \
             record (nothing was written this time)",
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use super::super::HEADER_DISPLAY_NAME;
    use super::*;

    #[test]
    fn the_header_is_documented_on_exactly_the_replayable_operations() {
        let mut openapi = crate::routes::documented().into_openapi();
        document(&mut openapi);
        for (path, item) in &openapi.paths.paths {
            let Some(operation) = &item.post else {
                continue;
            };
            let has_header = operation.parameters.iter().flatten().any(|parameter| {
                matches!(parameter, RefOr::T(parameter) if parameter.name == HEADER_DISPLAY_NAME)
            });
            let replayable = ROUTES.iter().any(|route| {
                route.method == "POST"
                    && route.path == path
                    && route.idempotency == Idempotency::Keyed
            });
            assert_eq!(has_header, replayable, "POST {path}");
            if replayable {
                for status in ["409", "422"] {
                    assert!(
                        operation.responses.responses.contains_key(status),
                        "POST {path} {status}"
                    );
                }
            }
        }
    }
}
