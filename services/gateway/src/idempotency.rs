//! `Idempotency-Key` on create routes: a client that retries a create it is unsure
//! about (timeout, dropped connection, a gateway that died) gets the first result
//! instead of a second record.
//!
//! The gateway keeps no key itself. On the routes the route table classes
//! [`Keyed`](crate::routes::Idempotency::Keyed) or
//! [`KeyedDocumentedByOperation`](crate::routes::Idempotency::KeyedDocumentedByOperation)
//! it checks the header (1 to 128 printable ASCII characters, else 400) and forwards
//! it in the request's `idempotency_key` field to the service that owns the record.
//! That service stores the key, scoped to the caller, in the same transaction as the
//! record it creates (`haven_storage::idempotency`), so:
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
    use crate::routes::ROUTES;

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
        let posts: Vec<&str> = ROUTES
            .iter()
            .filter(|route| route.method == "POST")
            .map(|route| route.path)
            .collect();
        let classified: BTreeSet<String> = posts.iter().map(|path| (*path).to_owned()).collect();
        assert_eq!(classified.len(), posts.len(), "listed twice");
        assert_eq!(
            classified,
            documented_posts(),
            "every documented POST must be in the route table, keyed (its service keeps \
             the key with the record) or not keyed, with the reason"
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
