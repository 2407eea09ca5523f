//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes, and the shared parts every operation refers to.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// Name of the bearer security scheme (also spelled out in `ApiDoc`).
pub(crate) const BEARER: &str = "bearer";

/// Document-level information; paths and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Haven REST API",
        description = "Case management for organisations assisting victims of human \
            trafficking: screenings, identification, cases, the directory of \
            organisations and their facilities, referrals and statistics. Every `/v1` operation requires a bearer \
            JWT; errors are `application/problem+json` (RFC 9457) with a `request_id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    components(schemas(ProblemBody, ProblemField)),
    tags(
        (name = "screenings", description = "Screenings, consent and identification decisions"),
        (name = "clocks", description = "Statutory deadlines started by identification decisions"),
        (name = "persons", description = "Personal data: audited reads, erasure, access log"),
        (name = "cases", description = "Rehabilitation and reintegration cases"),
        (name = "organizations", description = "Directory of organisations"),
        (name = "facilities", description = "Facilities of the directory: search for a place, coverage, gazetteer"),
        (name = "referrals", description = "Referrals of cases between organisations and what they disclose"),
        (name = "reports", description = "Statistics and anonymised exports without personal data, and the release ledger"),
        (name = "operations", description = "Liveness and readiness (no authentication)"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Completes the document assembled by the router: version and server URL.
pub(crate) fn finish(
    mut openapi: utoipa::openapi::OpenApi,
    public_url: &str,
) -> utoipa::openapi::OpenApi {
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi.servers = Some(vec![Server::new(public_url.trim_end_matches('/'))]);
    openapi
}

/// An RFC 9457 problem, the body of every error response.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub(crate) struct ProblemBody {
    /// URI naming the kind of problem, e.g. `https://haven.dev/problems/not_found`.
    #[schema(rename = "type")]
    problem_type: String,
    /// Short summary of the kind of problem.
    title: String,
    /// HTTP status code.
    status: u16,
    /// What went wrong in this occurrence.
    detail: Option<String>,
    /// Id of the request, also in the `x-request-id` header; quote it when reporting.
    request_id: Option<String>,
    /// Invalid fields.
    errors: Option<Vec<ProblemField>>,
}

/// One invalid field of a problem.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ProblemField {
    /// Field path, e.g. `referral_source`.
    field: String,
    /// What is wrong.
    message: String,
}

/// Errors any authenticated operation can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum CommonErrors {
    /// Malformed request or invalid field.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(ProblemBody),
    /// Missing or invalid bearer token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(ProblemBody),
    /// The caller's roles do not allow the operation.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(ProblemBody),
    /// A service is unavailable (down, restarting, or gone with the call in
    /// flight); retry after `Retry-After` seconds, with the same `Idempotency-Key`
    /// for a create.
    #[response(
        status = 503,
        content_type = "application/problem+json",
        headers(("retry-after" = u64, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ProblemBody),
    /// The request took longer than allowed: a service was too slow to answer.
    #[response(status = 504, content_type = "application/problem+json")]
    Timeout(ProblemBody),
}

/// Errors of operations that take a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum BodyErrors {
    /// Body larger than allowed.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(ProblemBody),
    /// Body is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemBody),
}

/// The resource does not exist or is outside the caller's organisation.
#[derive(IntoResponses)]
#[response(status = 404, content_type = "application/problem+json")]
#[allow(dead_code)]
pub(crate) struct NotFound(ProblemBody);
