//! `Idempotency-Key` on create routes: a client that retries a create it is unsure
//! about (timeout, dropped connection) gets the first answer instead of a second
//! record.
//!
//! For a `POST` to one of [`REPLAYABLE_ROUTES`] carrying the header (1 to 128
//! printable ASCII characters, else 400), the key is scoped to the verified caller
//! (subject and organisation) and recorded in the gateway's own database:
//!
//! - first use: the record is claimed (in progress), the request runs, and a 2xx or
//!   4xx response is stored; on a 5xx, a 401, 403, 408 or 429 (about the caller or
//!   the moment, not the request), or when the request is dropped (timeout, client
//!   gone, panic), the record is deleted so the client can retry;
//! - same key, same request (SHA-256 of method, path and body), completed: the stored
//!   status, body, `Content-Type`, `Location` and `ETag` are replayed with
//!   `Idempotency-Replayed: true`, and no service is called;
//! - same key, different request: 422;
//! - same key, still in progress: 409 with `Retry-After: 1`.
//!
//! Records expire after [`RECORD_TTL`]: an expired record counts as absent, and every
//! [`PURGE_EVERY`] claims a bounded batch of old records is deleted. Requests without
//! the header, or with an invalid token (they get their 401 from the route), are
//! passed on untouched.
//!
//! # Personal data
//!
//! The request body is never stored, only its hash. The response body IS stored, in
//! clear, for up to a day, out of reach of crypto-shredding. Replay must therefore
//! NEVER be enabled for a route whose response carries personal data (names, birth
//! dates, contacts, identity numbers, narrative text such as decision reasons, case
//! notes and plans...): the listed routes answer with ids, codes, names of
//! organisations, categorical fields, dates, amounts and a payment's purpose only. Every route answering with a whole screening is left
//! out: a screening carries a minor's guardian (name, contact) and decision reasons,
//! which intake keeps encrypted. Adding a route to [`REPLAYABLE_ROUTES`] means
//! checking its response first; a unit test makes every documented `POST` be listed
//! one way or the other.

mod openapi;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{FromRequest as _, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use haven_auth::http::Authenticated;
use haven_error::{ErrorCode, HavenError};
use haven_storage::Database;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::AppState;
pub(crate) use openapi::document;
use store::{Claim, IdempotencyStore, NewClaim, RecordKey, StoredResponse};

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a replayed response.
pub(crate) const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";
/// How the header is named in problems and documentation.
const HEADER_DISPLAY_NAME: &str = "Idempotency-Key";
/// Longest key accepted.
const MAX_KEY_CHARS: usize = 128;
/// How long a record is kept and honoured.
pub(crate) const RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Old records are purged once every this many claims...
const PURGE_EVERY: u64 = 100;
/// ...at most this many at a time.
const PURGE_BATCH: u32 = 1_000;
/// A record still in progress this long after the request time budget belongs to a
/// gateway that stopped mid-request; a retry takes it over.
const ABANDONED_MARGIN: Duration = Duration::from_secs(60);
/// Create responses are small; a larger one is passed on without being stored.
const MAX_STORED_RESPONSE_BYTES: usize = 256 * 1024;

/// `POST` routes (matched templates) whose responses are stored and replayed. Each
/// answers without personal data (see the module documentation).
pub(crate) const REPLAYABLE_ROUTES: &[&str] = &[
    "/v1/organizations",
    "/v1/clocks/{id}/complete",
    "/v1/indicator_sets",
    "/v1/cases/{id}/assessments",
    "/v1/cases/{id}/services",
    // Amounts, dates and the purpose of a payment: a retried payment must not be
    // booked twice.
    "/v1/cases/{id}/payments",
    "/v1/cases/{id}/follow_ups",
    // A facility: an organisation's address, capacity and contacts, not a person's.
    "/v1/facilities",
    // The case by its code, ids, the service sought, dates and the purpose, which
    // says what is asked, not who the person is (the API documents that it must carry
    // no personal details; what the receiver may know is read from the disclosure).
    "/v1/referrals",
];

/// Why a route answering with a whole screening may not be stored.
const ANSWERS_WITH_A_SCREENING: &str = "answers with the whole screening: a minor's \
    guardian (name, contact) and decision reasons, which intake encrypts as personal data \
    and shreds on erasure";

/// Why a state change guarded by `If-Match` needs no replay.
#[cfg_attr(not(test), allow(dead_code))]
const NOT_A_CREATE_IF_MATCH: &str =
    "not a create: If-Match already makes a retry safe (a repeat is refused with 412)";

/// Why deciding a transfer needs no replay.
#[cfg_attr(not(test), allow(dead_code))]
const TRANSFER_DECISION: &str =
    "not a create: a transfer is decided once, a repeated decision is refused";

/// `POST` routes deliberately left without `Idempotency-Key` handling, and why. The
/// header is ignored there.
#[cfg_attr(not(test), allow(dead_code))]
const NOT_REPLAYABLE_ROUTES: &[(&str, &str)] = &[
    (
        "/v1/cases/{id}/seal",
        "not a create, and already idempotent: sealing a sealed case returns it unchanged",
    ),
    ("/v1/cases/{id}/stage", NOT_A_CREATE_IF_MATCH),
    (
        "/v1/cases/{id}/plans",
        "answers with the plan's goals and actions, narratives about the person that the \
         case service encrypts and shreds on erasure",
    ),
    (
        "/v1/cases/{id}/notes",
        "answers with the note, a narrative the case service encrypts and shreds on erasure",
    ),
    (
        "/v1/cases/{id}/plans/{plan_version}/approve",
        NOT_A_CREATE_IF_MATCH,
    ),
    (
        "/v1/cases/{id}/plans/{plan_version}/reject",
        NOT_A_CREATE_IF_MATCH,
    ),
    (
        "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome",
        NOT_A_CREATE_IF_MATCH,
    ),
    (
        "/v1/cases/{id}/transfers",
        "If-Match of the case already makes a retry safe (a repeat is refused with 412), \
         and the response carries the free-text reason for the handover",
    ),
    ("/v1/cases/{id}/closure", NOT_A_CREATE_IF_MATCH),
    ("/v1/cases/{id}/closure/approve", NOT_A_CREATE_IF_MATCH),
    ("/v1/cases/{id}/closure/reject", NOT_A_CREATE_IF_MATCH),
    ("/v1/cases/{id}/reopen", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/accept", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/decline", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/start", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/complete", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/cancel", NOT_A_CREATE_IF_MATCH),
    ("/v1/referrals/{id}/revoke", NOT_A_CREATE_IF_MATCH),
    (
        "/v1/exports/ctdc",
        "every export is its own release in the ledger: re-running the export is the \
         retry, and a replay would hand out a file the ledger does not record twice",
    ),
    (
        "/v1/releases/private_counts",
        "every release spends privacy budget and is its own entry in both ledgers: \
         re-running it is the retry, and a replay would hand out counts the ledger does \
         not record twice",
    ),
    ("/v1/transfers/{id}/accept", TRANSFER_DECISION),
    ("/v1/transfers/{id}/reject", TRANSFER_DECISION),
    ("/v1/screenings", ANSWERS_WITH_A_SCREENING),
    ("/v1/screenings/{id}/consents", ANSWERS_WITH_A_SCREENING),
    ("/v1/screenings/{id}/decisions", ANSWERS_WITH_A_SCREENING),
    (
        "/v1/screenings/{id}/matches/confirm",
        ANSWERS_WITH_A_SCREENING,
    ),
];

/// Idempotency records of one gateway.
#[derive(Debug)]
pub(crate) struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    /// Claims made, to purge every [`PURGE_EVERY`].
    claims: AtomicU64,
    /// How old an in-progress record must be to count as abandoned.
    abandoned_after: Duration,
}

impl Idempotency {
    /// Records in `database`, for a gateway whose requests last at most
    /// `request_timeout`.
    pub(crate) fn new(database: &Database, request_timeout: Duration) -> Self {
        Self {
            store: store::open(database),
            claims: AtomicU64::new(0),
            abandoned_after: request_timeout + ABANDONED_MARGIN,
        }
    }

    /// Deletes a batch of expired records every [`PURGE_EVERY`] claims, off the
    /// request path.
    fn purge_now_and_then(&self, now: OffsetDateTime) {
        let claims = self.claims.fetch_add(1, Ordering::Relaxed) + 1;
        if !claims.is_multiple_of(PURGE_EVERY) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            match store.purge(now - RECORD_TTL, PURGE_BATCH).await {
                Ok(purged) => tracing::debug!(purged, "expired idempotency records purged"),
                Err(error) => error.log(),
            }
        });
    }
}

/// Middleware on every route; acts only on `POST`s to [`REPLAYABLE_ROUTES`] that
/// carry an `Idempotency-Key`. Runs inside the body limit and the rate limit.
pub(crate) async fn handle(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(route) = replayable_route(&request) else {
        return next.run(request).await;
    };
    if !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    let Some(authenticated) = caller(&state, &request) else {
        return next.run(request).await;
    };
    let key = match idempotency_key(request.headers()) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    let (parts, body) = request.into_parts();
    let body = match buffer(body, &parts.extensions).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let now = OffsetDateTime::now_utc();
    let idempotency = state.idempotency();
    let claim = NewClaim {
        key: RecordKey {
            organization_id: authenticated.principal.organization_id,
            subject: authenticated.principal.subject,
            key,
        },
        method: parts.method.as_str().to_owned(),
        route: route.to_owned(),
        request_hash: request_hash(&parts.method, parts.uri.path(), &body),
        now,
        expired_before: now - RECORD_TTL,
        abandoned_before: now - idempotency.abandoned_after,
    };
    let request = Request::from_parts(parts, Body::from(body));
    let claimed = match idempotency.store.claim(&claim).await {
        Ok(Claim::Claimed { claim_id }) => claim_id,
        Ok(Claim::Completed(stored)) => {
            count("replayed");
            return replay(stored);
        }
        Ok(Claim::InProgress) => {
            count("in_progress");
            return in_progress();
        }
        Ok(Claim::DifferentRequest) => {
            count("different_request");
            return HavenError::new(
                ErrorCode::Unprocessable,
                "Idempotency-Key was used with a different request",
            )
            .into_response();
        }
        Err(error) => return error.into_response(),
    };
    idempotency.purge_now_and_then(now);
    let guard = ClaimGuard {
        store: idempotency.store.clone(),
        key: claim.key,
        claim_id: claimed,
        settled: false,
    };
    let response = next.run(request).await;
    record(guard, response).await
}

/// The route template if the request is a `POST` to a replayable route.
fn replayable_route(request: &Request) -> Option<&'static str> {
    if request.method() != Method::POST {
        return None;
    }
    let matched = request.extensions().get::<MatchedPath>()?.as_str();
    REPLAYABLE_ROUTES
        .iter()
        .copied()
        .find(|route| *route == matched)
}

/// The verified caller: passed on by the rate limiter, or verified here if the
/// limiter did not run.
fn caller(state: &AppState, request: &Request) -> Option<Authenticated> {
    request
        .extensions()
        .get::<Authenticated>()
        .cloned()
        .or_else(|| crate::rate_limit::authenticate(state, request))
}

/// The one `Idempotency-Key` of a request: 1 to 128 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, HavenError> {
    let invalid = || {
        HavenError::invalid_field(
            HEADER_DISPLAY_NAME,
            "must be a single header of 1 to 128 printable ASCII characters",
        )
    };
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid());
    };
    let bytes = value.as_bytes();
    let printable = bytes.iter().all(|byte| matches!(byte, b' '..=b'~'));
    if bytes.is_empty() || bytes.len() > MAX_KEY_CHARS || !printable {
        return Err(invalid());
    }
    value.to_str().map(str::to_owned).map_err(|_| invalid())
}

/// Reads the whole body, which the body limit already bounds (its extension is
/// copied so the limit is the configured one).
async fn buffer(body: Body, extensions: &http::Extensions) -> Result<Bytes, HavenError> {
    let mut request = Request::new(body);
    *request.extensions_mut() = extensions.clone();
    Bytes::from_request(request, &())
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
        })
}

/// SHA-256 over method, path and body; method and path cannot contain a newline, so
/// the encoding is unambiguous.
fn request_hash(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(method.as_str())
        .chain_update(b"\n")
        .chain_update(path)
        .chain_update(b"\n")
        .chain_update(body)
        .finalize()
        .to_vec()
}

/// A claimed record whose request is running. Dropped before it is settled (the
/// request timed out, the client went away, the handler panicked), it deletes the
/// record in the background so the client can retry.
#[derive(Debug)]
struct ClaimGuard {
    store: Arc<dyn IdempotencyStore>,
    key: RecordKey,
    claim_id: Uuid,
    settled: bool,
}

impl ClaimGuard {
    /// Deletes the record now.
    async fn release(mut self) {
        self.settled = true;
        if let Err(error) = self.store.release(&self.key, self.claim_id).await {
            error.log();
        }
    }

    /// Stores the response; if that fails, deletes the record instead, so a retry
    /// is not refused for a day.
    async fn complete(mut self, response: &StoredResponse) {
        match self
            .store
            .complete(&self.key, self.claim_id, response)
            .await
        {
            Ok(true) => self.settled = true,
            Ok(false) => {
                self.settled = true;
                tracing::warn!("idempotency record was taken over before the response was stored");
            }
            Err(error) => {
                error.log();
                self.release().await;
            }
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        let key = self.key.clone();
        let claim_id = self.claim_id;
        count("abandoned");
        runtime.spawn(async move {
            if let Err(error) = store.release(&key, claim_id).await {
                error.log();
            }
        });
    }
}

/// Whether a response is the outcome of the request itself, to be replayed: a 2xx,
/// or a 4xx other than those about the caller's credentials or the moment (a retry
/// with a fresh token, new roles or after a pause must not be refused for a day).
fn is_replayable(status: StatusCode) -> bool {
    let transient = [
        StatusCode::UNAUTHORIZED,
        StatusCode::FORBIDDEN,
        StatusCode::REQUEST_TIMEOUT,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    status.is_success() || (status.is_client_error() && !transient.contains(&status))
}

/// Stores a replayable response and passes it on; releases the record for anything
/// else (5xx, and the 4xx [`is_replayable`] leaves out).
async fn record(guard: ClaimGuard, response: Response) -> Response {
    let status = response.status();
    if !is_replayable(status) {
        count("released");
        guard.release().await;
        return response;
    }
    let too_large = response
        .body()
        .size_hint()
        .upper()
        .is_none_or(|upper| upper > MAX_STORED_RESPONSE_BYTES as u64);
    if too_large {
        tracing::warn!(%status, "response too large to store for idempotent replay");
        guard.release().await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, MAX_STORED_RESPONSE_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            guard.release().await;
            return HavenError::internal(error).into_response();
        }
    };
    let header_text = |name: HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type: header_text(header::CONTENT_TYPE),
        location: header_text(header::LOCATION),
        etag: header_text(header::ETAG),
        body: body.to_vec(),
    };
    count("stored");
    guard.complete(&stored).await;
    Response::from_parts(parts, Body::from(body))
}

/// The stored response again, marked as a replay.
fn replay(stored: StoredResponse) -> Response {
    let Ok(status) = StatusCode::from_u16(stored.status) else {
        return HavenError::internal(std::io::Error::other(
            "stored idempotency record has an invalid status",
        ))
        .into_response();
    };
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, stored.content_type),
        (header::LOCATION, stored.location),
        (header::ETAG, stored.etag),
    ] {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    response
}

/// 409: the first request with this key is still running.
fn in_progress() -> Response {
    let mut response = HavenError::new(
        ErrorCode::Conflict,
        "a request with this Idempotency-Key is still in progress; retry later",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn count(outcome: &'static str) {
    metrics::counter!("haven_gateway_idempotency_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::OpenApi as _;

    use super::*;

    fn documented_posts() -> BTreeSet<String> {
        let document = crate::routes::documented().into_openapi();
        let _ = crate::openapi::ApiDoc::openapi();
        document
            .paths
            .paths
            .iter()
            .filter(|(path, item)| path.starts_with("/v1/") && item.post.is_some())
            .map(|(path, _)| path.clone())
            .collect()
    }

    #[test]
    fn every_documented_post_is_classified_exactly_once() {
        let replayable: BTreeSet<String> = REPLAYABLE_ROUTES
            .iter()
            .map(|route| (*route).to_owned())
            .collect();
        let not_replayable: BTreeSet<String> = NOT_REPLAYABLE_ROUTES
            .iter()
            .map(|(route, _)| (*route).to_owned())
            .collect();
        assert_eq!(replayable.len(), REPLAYABLE_ROUTES.len(), "listed twice");
        assert!(
            replayable.is_disjoint(&not_replayable),
            "a route is listed both ways"
        );
        let classified: BTreeSet<String> = replayable.union(&not_replayable).cloned().collect();
        assert_eq!(
            classified,
            documented_posts(),
            "every documented POST must be in REPLAYABLE_ROUTES (after checking its \
             response carries no personal data) or NOT_REPLAYABLE_ROUTES"
        );
    }

    #[test]
    fn keys_are_one_header_of_printable_ascii() {
        let with = |values: &[&[u8]]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(IDEMPOTENCY_KEY, HeaderValue::from_bytes(value).unwrap());
            }
            idempotency_key(&headers)
        };
        let longest = "k".repeat(MAX_KEY_CHARS);
        for valid in [
            b"a".as_slice(),
            b"0b8f6f5e-7a4c-4f4e-9a57-6a9f2b1d3c4e",
            b"order 42 / retry ~!",
            longest.as_bytes(),
        ] {
            assert_eq!(
                with(&[valid]).unwrap().as_bytes(),
                valid,
                "{}",
                String::from_utf8_lossy(valid)
            );
        }
        let too_long = "k".repeat(MAX_KEY_CHARS + 1);
        for invalid in [
            b"".as_slice(),
            too_long.as_bytes(),
            "clé".as_bytes(),
            b"tab\there",
        ] {
            let error = with(&[invalid]).unwrap_err();
            assert_eq!(error.violations()[0].field, HEADER_DISPLAY_NAME);
        }
        assert!(with(&[b"one", b"two"]).is_err());
    }

    /// A handler that runs past the time budget the first time and creates the
    /// second: the first request is dropped mid-flight, which must free its key.
    #[tokio::test]
    async fn a_request_dropped_mid_flight_releases_its_key() {
        use std::sync::atomic::AtomicUsize;

        use axum::routing::post;
        use haven_auth::keys::{DevTokenRequest, KeyMaterial};
        use tower::ServiceExt as _;

        let dir = tempfile::tempdir().unwrap();
        let mut settings = haven_config::Settings {
            data_dir: dir.path().to_path_buf(),
            ..haven_config::Settings::default()
        };
        settings.gateway.request_timeout_ms = 100;
        let token = KeyMaterial::load_or_create(&settings)
            .unwrap()
            .mint_dev_token(
                &settings.auth,
                &DevTokenRequest {
                    subject: "user-7".to_owned(),
                    organization_id: Uuid::from_u128(7),
                    roles: vec!["admin".to_owned()],
                    ttl_seconds: 600,
                },
            )
            .unwrap();
        let state = AppState::connect(&settings).await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let handler_calls = calls.clone();
        let router = axum::Router::new().route(
            "/v1/indicator_sets",
            post(move || {
                let call = handler_calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call == 0 {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    StatusCode::CREATED
                }
            }),
        );
        let router = crate::with_layers(router, &state).with_state(state);
        let request = || {
            http::Request::post("/v1/indicator_sets")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(IDEMPOTENCY_KEY, "k1")
                .body(Body::from("{}"))
                .unwrap()
        };
        let cut_off = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(cut_off.status(), StatusCode::GATEWAY_TIMEOUT);
        // The claim is released in the background; until then a retry is told to wait.
        let mut retry = router.clone().oneshot(request()).await.unwrap();
        for _ in 0..100 {
            if retry.status() != StatusCode::CONFLICT {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            retry = router.clone().oneshot(request()).await.unwrap();
        }
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert!(retry.headers().get(IDEMPOTENCY_REPLAYED).is_none());
        let replayed = router.oneshot(request()).await.unwrap();
        assert_eq!(replayed.status(), StatusCode::CREATED);
        assert_eq!(replayed.headers()[IDEMPOTENCY_REPLAYED], "true");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn outcomes_of_the_request_are_replayable_and_passing_trouble_is_not() {
        for replayable in [200, 201, 400, 404, 409, 413, 415, 422] {
            let status = StatusCode::from_u16(replayable).unwrap();
            assert!(is_replayable(status), "{status}");
        }
        for not_replayable in [401, 403, 408, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(not_replayable).unwrap();
            assert!(!is_replayable(status), "{status}");
        }
    }

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let base = request_hash(&Method::POST, "/v1/screenings", b"{}");
        assert_eq!(base.len(), 32);
        assert_eq!(base, request_hash(&Method::POST, "/v1/screenings", b"{}"));
        assert_ne!(base, request_hash(&Method::PUT, "/v1/screenings", b"{}"));
        assert_ne!(
            base,
            request_hash(&Method::POST, "/v1/organizations", b"{}")
        );
        assert_ne!(base, request_hash(&Method::POST, "/v1/screenings", b"{ }"));
    }
}
