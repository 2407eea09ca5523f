//! axum side: the extractor that authenticates a REST request.

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use haven_error::HavenError;

use crate::principal::Principal;
use crate::verifier::{AuthError, TokenVerifier};

/// An authenticated REST caller, with the raw token to forward to services.
///
/// A middleware that already verified the request's token (e.g. to key a rate
/// limit) may store the result in the request extensions; the extractor then reuses
/// it instead of verifying the same token again. Only the server can set
/// extensions, and the stored token must equal the request's.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who is calling.
    pub principal: Principal,
    /// The bearer token, forwarded so every service validates it again.
    pub bearer: String,
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    TokenVerifier: FromRef<S>,
{
    type Rejection = HavenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let token = crate::bearer_token(header).ok_or(AuthError::Missing)?;
        if let Some(verified) = parts.extensions.get::<Authenticated>()
            && verified.bearer == token
        {
            return Ok(verified.clone());
        }
        let verifier = TokenVerifier::from_ref(state);
        let principal = verifier.verify_user(token)?;
        Ok(Self {
            principal,
            bearer: token.to_owned(),
        })
    }
}
