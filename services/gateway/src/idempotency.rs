//! `Idempotency-Key` on create routes: a client that retries a create it is unsure
//! about (timeout, dropped connection, a gateway that died) gets the first result
//! instead of a second record.
//!
//! The gateway keeps no key itself. On the routes of [`KEYED_ROUTES`] (and on the
//! screening routes, which document it themselves) it checks the header (1 to 128
//! printable ASCII characters, else 400) and forwards it in the request's
//! `idempotency_key` field to the service that owns the record. That service stores
//! the key, scoped to the caller, in the same transaction as the record it creates
//! (`haven_storage::idempotency`), so:
//!
//! - same key, same request: the record the first request created, as it is now,
//!   with `Idempotency-Replayed: true`, and nothing is written; this holds whatever
//!   died in between, and a retry is answered at once;
//! - same key, different request: 422;
//! - two identical requests at once: one record; the other gets the replay (or, if
//!   the first rolled back at that very moment, 409 with `Retry-After: 1`).
//!
//! Nothing of the response is stored anywhere: a replay is read from the record, so
//! crypto-shredding and field visibility apply to it as to any read.

use axum::extract::FromRequestParts;
use axum::response::Response;
use haven_error::HavenError;
use haven_storage::idempotency::{KEY_RULE, is_valid_key};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};

mod openapi;

pub(crate) use openapi::document;

/// The request header.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a replayed response.
pub(crate) const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";
/// How the header is named in problems and documentation.
const HEADER_DISPLAY_NAME: &str = "Idempotency-Key";

/// `POST` routes whose `Idempotency-Key` is forwarded to the owning service and
/// documented here (see the module documentation).
pub(crate) const KEYED_ROUTES: &[&str] = &[
    // The directory (referral service).
    "/v1/organizations",
    "/v1/facilities",
    "/v1/referrals",
    // Intake.
    "/v1/indicator_sets",
    // The case service; a retried payment must never be booked twice.
    "/v1/cases/{id}/assessments",
    "/v1/cases/{id}/services",
    "/v1/cases/{id}/payments",
    "/v1/cases/{id}/follow_ups",
];

/// Why the screening routes are not in [`KEYED_ROUTES`].
const SCREENING_KEYS: &str = "takes Idempotency-Key, which intake keeps with the \
    screening; the operation documents the header itself";

/// Why a state change guarded by `If-Match` needs no replay.
#[cfg_attr(not(test), allow(dead_code))]
const NOT_A_CREATE_IF_MATCH: &str =
    "not a create: If-Match already makes a retry safe (a repeat is refused with 412)";

/// Why deciding a transfer needs no replay.
#[cfg_attr(not(test), allow(dead_code))]
const TRANSFER_DECISION: &str =
    "not a create: a transfer is decided once, a repeated decision is refused";

/// `POST` routes outside [`KEYED_ROUTES`], and why. The header is ignored there
/// unless the route documents it.
#[cfg_attr(not(test), allow(dead_code))]
const NOT_KEYED_ROUTES: &[(&str, &str)] = &[
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
    ("/v1/screenings", SCREENING_KEYS),
    ("/v1/screenings/{id}/consents", SCREENING_KEYS),
    ("/v1/screenings/{id}/decisions", SCREENING_KEYS),
    (
        "/v1/screenings/{id}/matches/confirm",
        "not a create, and already idempotent: confirming a confirmed match changes nothing",
    ),
    (
        "/v1/clocks/{id}/complete",
        "not a create, and already idempotent: completing a completed clock returns it \
         unchanged",
    ),
];

/// The `Idempotency-Key` header of a request, checked, to forward to the owning
/// service in the request's `idempotency_key` field (empty when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ForwardedKey(pub(crate) String);

impl<S> FromRequestParts<S> for ForwardedKey
where
    S: Send + Sync,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        idempotency_key(&parts.headers).map(Self)
    }
}

/// The one `Idempotency-Key` of a request (empty when there is none): 1 to 128
/// printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, HavenError> {
    let invalid = || HavenError::invalid_field(HEADER_DISPLAY_NAME, KEY_RULE);
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Ok(String::new()),
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Err(invalid()),
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if !is_valid_key(key) {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

/// Marks `response` as a replay when the owning service answered with what an
/// earlier request with the same key created.
pub(crate) fn mark_replayed(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENCY_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use haven_storage::idempotency::MAX_KEY_CHARS;
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
        let keyed: BTreeSet<String> = KEYED_ROUTES
            .iter()
            .map(|route| (*route).to_owned())
            .collect();
        let not_keyed: BTreeSet<String> = NOT_KEYED_ROUTES
            .iter()
            .map(|(route, _)| (*route).to_owned())
            .collect();
        assert_eq!(keyed.len(), KEYED_ROUTES.len(), "listed twice");
        assert!(keyed.is_disjoint(&not_keyed), "a route is listed both ways");
        let classified: BTreeSet<String> = keyed.union(&not_keyed).cloned().collect();
        assert_eq!(
            classified,
            documented_posts(),
            "every documented POST must be in KEYED_ROUTES (its service keeps the key \
             with the record) or NOT_KEYED_ROUTES"
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
        assert_eq!(with(&[]).unwrap(), "");
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
}
