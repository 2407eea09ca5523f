//! Authentication and authorization shared by the gateway and every service.
//!
//! - [`TokenVerifier`] validates JWTs: algorithms pinned, `exp`/`iss`/`aud`/`sub`
//!   required, small leeway, `org` and `roles` claims typed.
//! - User tokens carry the user audience; service-to-service tokens carry a separate
//!   audience and key, so a service identity can never be replayed through the REST
//!   gateway, which only accepts user tokens.
//! - [`keys`] generates the development signing keys into the data directory on first
//!   run and mints development tokens.
//! - [`policy`] is the one role × action table that code and tests read.
//! - [`fields`] classes information (identifying, quasi-identifier, narrative,
//!   operational) and says which roles may receive each class.
//! - [`request_id`] is the one rule for which request ids are kept.
//! - [`http`] is the axum extractor, [`grpc`] the tonic interceptor and client helpers.

mod claims;
pub mod fields;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod policy;
mod principal;
pub mod request_id;
mod verifier;

pub use claims::Claims;
pub use fields::FieldClass;
pub use policy::{Action, Role};
pub use principal::{Principal, PrincipalKind, Scope};
pub use verifier::{AuthError, MAX_SUBJECT_BYTES, TokenVerifier};

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case),
/// or `None` for another scheme or a malformed value: the one reading of the header
/// for REST, gRPC and the gateway's rate limiter.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bearer_token_is_read_in_any_case_of_the_scheme_and_nothing_else() {
        assert_eq!(super::bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(super::bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(super::bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(super::bearer_token("Basic abc"), None);
        assert_eq!(super::bearer_token("Bearer"), None);
        assert_eq!(super::bearer_token(""), None);
    }
}
