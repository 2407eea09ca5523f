//! THE route table: every REST route of the gateway, declared once with its method,
//! path, policy action, idempotency class and handler ([`table`]), the handlers
//! (one submodule per resource) and the response helpers they share.
//!
//! Everything else is derived from the table: the router and the OpenAPI document
//! ([`documented`]), the policy check ([`crate::policy::required_action`]) and the
//! `Idempotency-Key` documentation ([`crate::idempotency::document`]). A route is
//! added by adding its handler (its `#[utoipa::path]` names its path from
//! [`paths`]) and one entry to the table, which cannot be written without an action
//! and an idempotency class; a handler missing from the table is dead code, which
//! does not compile here.

#![deny(
    dead_code,
    reason = "a handler missing from the route table would never be routed"
)]

pub(crate) mod cases;
pub(crate) mod clocks;
pub(crate) mod deliveries;
pub(crate) mod facilities;
pub(crate) mod follow_ups;
pub(crate) mod health;
pub(crate) mod notes;
pub(crate) mod organizations;
pub(crate) mod persons;
pub(crate) mod plans;
pub(crate) mod referrals;
pub(crate) mod reports;
pub(crate) mod screenings;
pub(crate) mod transfers;

pub(crate) mod paths;
mod table;

use axum::response::{IntoResponse, Response};
use haven_auth::Action;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::OpenApi as _;
use utoipa::openapi::path::{Operation, PathItem, Paths};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::extract::Json;
use crate::openapi::ApiDoc;
use crate::state::AppState;

pub use table::{PUBLIC_ROUTES, ROUTES};

/// Builds a handler's router and OpenAPI operation (`utoipa_axum::routes!`).
type Handler = fn() -> UtoipaMethodRouter<AppState>;

/// One authenticated `/v1` route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Route template as the router matches it, e.g. `/v1/cases/{id}`.
    pub path: &'static str,
    /// The action the caller's roles must allow (checked before any backend is
    /// called; the services check again).
    pub action: Action,
    /// Whether a retry needs an `Idempotency-Key`, and who keeps it.
    pub idempotency: Idempotency,
    handler: Handler,
}

/// One route open without authentication: health, for orchestrators and people.
#[derive(Debug, Clone, Copy)]
pub struct PublicRoute {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Route template as the router matches it.
    pub path: &'static str,
    handler: Handler,
}

/// What makes retrying a route safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// A read: retrying it changes nothing.
    Read,
    /// A create taking `Idempotency-Key`, which the gateway checks and forwards to
    /// the owning service; that service keeps it with the record it creates. The
    /// gateway documents the header and the `409` and `422` answers.
    Keyed,
    /// Like [`Idempotency::Keyed`], but the operation documents the header itself.
    KeyedDocumentedByOperation,
    /// Takes no key, for the reason given; the header is ignored.
    NotKeyed(&'static str),
}

impl Route {
    /// The route declared for `method` on the route template `path`, if any.
    pub fn find(method: &str, path: &str) -> Option<&'static Self> {
        ROUTES
            .iter()
            .find(|route| route.method == method && route.path == path)
    }
}

/// Method, path and handler of every route of the table, public ones included.
fn entries() -> impl Iterator<Item = (&'static str, &'static str, Handler)> {
    let authenticated = ROUTES
        .iter()
        .map(|route| (route.method, route.path, route.handler));
    let public = PUBLIC_ROUTES
        .iter()
        .map(|route| (route.method, route.path, route.handler));
    authenticated.chain(public)
}

/// Every route of the table, with the OpenAPI document built from their handlers.
pub(crate) fn documented() -> OpenApiRouter<AppState> {
    entries().fold(
        OpenApiRouter::with_openapi(ApiDoc::openapi()),
        |router, (method, path, handler)| {
            let (schemas, paths, method_router) = handler();
            debug_assert!(
                serves_only(&paths, method, path),
                "the handler of {method} {path} documents another route"
            );
            router.routes((schemas, paths, method_router))
        },
    )
}

/// Whether `paths` holds exactly one operation, `method` on `path`.
fn serves_only(paths: &Paths, method: &str, path: &str) -> bool {
    let mut documented = paths.paths.iter().flat_map(|(documented_path, item)| {
        operations(item).map(move |(documented_method, _)| (documented_method, documented_path))
    });
    matches!(
        (documented.next(), documented.next()),
        (Some((documented_method, documented_path)), None)
            if documented_method == method && documented_path == path
    )
}

/// The operations of a path item, by upper-case method.
pub(crate) fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("GET", item.get.as_ref()),
        ("PUT", item.put.as_ref()),
        ("POST", item.post.as_ref()),
        ("DELETE", item.delete.as_ref()),
        ("OPTIONS", item.options.as_ref()),
        ("HEAD", item.head.as_ref()),
        ("PATCH", item.patch.as_ref()),
        ("TRACE", item.trace.as_ref()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation?)))
}

/// The operation of a path item for an upper-case `method`.
pub(crate) fn operation_mut<'item>(
    item: &'item mut PathItem,
    method: &str,
) -> Option<&'item mut Operation> {
    match method {
        "GET" => item.get.as_mut(),
        "PUT" => item.put.as_mut(),
        "POST" => item.post.as_mut(),
        "DELETE" => item.delete.as_mut(),
        "OPTIONS" => item.options.as_mut(),
        "HEAD" => item.head.as_mut(),
        "PATCH" => item.patch.as_mut(),
        "TRACE" => item.trace.as_mut(),
        _ => None,
    }
}

/// A strong entity tag for a record version.
fn etag(version: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{version}\"")).ok()
}

/// `200` with the record and its `ETag`.
fn with_etag<T: Serialize>(version: u64, body: T) -> Response {
    let mut response = Json(body).into_response();
    if let Some(etag) = etag(version) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// `201` with the record, its `ETag` and, for a new resource, its `Location`.
fn created<T: Serialize>(location: Option<String>, version: u64, body: T) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // Records without a version (assessments, notes, payments) are never updated.
    if let Some(etag) = etag(version).filter(|_| version > 0) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|location| HeaderValue::from_str(&location).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;

    #[test]
    fn the_document_has_exactly_the_routes_of_the_table() {
        let document = documented().into_openapi();
        let documented: BTreeSet<(&str, &str)> = document
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                operations(item).map(move |(method, _)| (method, path.as_str()))
            })
            .collect();
        let declared: Vec<_> = entries().map(|(method, path, _)| (method, path)).collect();
        let unique: BTreeSet<(&str, &str)> = declared.iter().copied().collect();
        assert_eq!(unique.len(), declared.len(), "a route is declared twice");
        let undeclared: Vec<_> = documented.difference(&unique).collect();
        let undocumented: Vec<_> = unique.difference(&documented).collect();
        assert!(
            undeclared.is_empty() && undocumented.is_empty(),
            "documented but not in the table: {undeclared:?}; in the table but not \
             documented: {undocumented:?}"
        );
    }

    #[test]
    fn each_handler_documents_the_method_and_path_of_its_entry() {
        for (method, path, handler) in entries() {
            let (_, paths, _) = handler();
            let documented: Vec<_> = paths
                .paths
                .iter()
                .flat_map(|(path, item)| operations(item).map(move |(method, _)| (method, path)))
                .collect();
            assert!(
                serves_only(&paths, method, path),
                "the entry {method} {path} has a handler documenting {documented:?}"
            );
        }
    }

    #[test]
    fn authenticated_routes_are_under_v1_and_public_ones_are_not() {
        for route in ROUTES {
            assert!(route.path.starts_with("/v1/"), "{}", route.path);
        }
        for route in PUBLIC_ROUTES {
            assert!(!route.path.starts_with("/v1"), "{}", route.path);
            assert_eq!(route.method, "GET", "{}", route.path);
        }
    }

    #[test]
    fn reads_are_gets_and_keys_are_taken_by_creates_only() {
        for route in ROUTES {
            let what = format!("{} {}", route.method, route.path);
            match route.idempotency {
                Idempotency::Read => assert_eq!(route.method, "GET", "{what}"),
                Idempotency::Keyed | Idempotency::KeyedDocumentedByOperation => {
                    assert_eq!(route.method, "POST", "{what}");
                }
                Idempotency::NotKeyed(reason) => {
                    assert_ne!(route.method, "GET", "{what}: a read is `Read`");
                    assert!(!reason.trim().is_empty(), "{what}: say why");
                }
            }
        }
    }

    #[tokio::test]
    async fn every_authenticated_route_is_routed_and_asks_for_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let settings = haven_config::Settings {
            data_dir: dir.path().to_path_buf(),
            ..haven_config::Settings::default()
        };
        let state = AppState::connect(&settings).await.unwrap();
        let (router, _) = documented().split_for_parts();
        let router = router.with_state(state);
        let id = uuid::Uuid::new_v4().to_string();
        for route in ROUTES {
            let mut path = route.path.to_owned();
            while let (Some(open), Some(close)) = (path.find('{'), path.find('}')) {
                let value = if path[open..close].contains("version") {
                    "1"
                } else {
                    id.as_str()
                };
                path.replace_range(open..=close, value);
            }
            let request = http::Request::builder()
                .method(route.method)
                .uri(&path)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{} {path}",
                route.method
            );
        }
    }
}
