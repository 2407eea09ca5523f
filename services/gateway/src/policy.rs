//! Which action each REST route performs, checked against the shared role × action
//! policy before any backend is called. Services check again.
//!
//! The action is declared with the route, once, in the gateway's route table
//! ([`ROUTES`]); this module looks it up. The table is also what the
//! authorization-matrix test walks, so code and tests cannot drift apart.

use haven_auth::Action;

pub use crate::routes::{Idempotency, PUBLIC_ROUTES, PublicRoute, ROUTES, Route};

/// The action of a matched route, if it is listed.
pub fn required_action(method: &str, path: &str) -> Option<Action> {
    Route::find(method, path).map(|route| route.action)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn every_documented_v1_operation_has_exactly_one_rule() {
        let document = crate::routes::documented().into_openapi();
        let mut documented = Vec::new();
        for (path, item) in &document.paths.paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            for (method, _) in crate::routes::operations(item) {
                documented.push((method, path.clone()));
            }
        }
        let _ = crate::openapi::ApiDoc::openapi();
        for (method, path) in &documented {
            let rules = ROUTES
                .iter()
                .filter(|rule| rule.method == *method && rule.path == path)
                .count();
            assert_eq!(rules, 1, "{method} {path} needs exactly one policy rule");
        }
        assert_eq!(
            documented.len(),
            ROUTES.len(),
            "a rule names a route that does not exist"
        );
    }

    #[test]
    fn every_rule_is_what_the_check_finds() {
        for route in ROUTES {
            assert_eq!(
                required_action(route.method, route.path),
                Some(route.action),
                "{} {}",
                route.method,
                route.path
            );
        }
        for route in PUBLIC_ROUTES {
            assert_eq!(required_action(route.method, route.path), None);
        }
        assert_eq!(required_action("GET", "/v1/cases/{case_id}"), None);
        assert_eq!(required_action("PUT", "/v1/cases/{id}"), None);
    }
}
