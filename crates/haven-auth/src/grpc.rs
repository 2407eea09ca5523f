//! tonic side: the server interceptor that validates every call, and helpers for
//! clients to attach credentials.

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

use haven_error::{ErrorCode, HavenError};

use crate::keys::ServiceTokens;
use crate::principal::Principal;
use crate::verifier::{AuthError, TokenVerifier};

/// Validates the bearer token of every call and stores the [`Principal`] in the
/// request extensions. Wrap domain services with it; health and reflection stay
/// unwrapped and so open.
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    verifier: TokenVerifier,
}

impl AuthInterceptor {
    /// An interceptor using `verifier`.
    pub fn new(verifier: TokenVerifier) -> Self {
        Self { verifier }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = bearer(request.metadata())
            .ok_or(AuthError::Missing)
            .map_err(HavenError::from)?;
        let principal = self.verifier.verify_any(token).map_err(HavenError::from)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The caller of a request that passed [`AuthInterceptor`].
pub fn principal<T>(request: &Request<T>) -> Result<Principal, HavenError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| HavenError::new(ErrorCode::Unauthenticated, "missing bearer token"))
}

/// Sets `authorization: Bearer <token>` on an outgoing request.
pub fn attach_bearer<T>(request: &mut Request<T>, token: &str) -> Result<(), HavenError> {
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| HavenError::new(ErrorCode::Unauthenticated, "malformed token"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(())
}

/// Client interceptor that attaches this service's identity to every call.
#[derive(Debug, Clone)]
pub struct ServiceIdentity {
    tokens: Arc<ServiceTokens>,
}

impl ServiceIdentity {
    /// Calls made with `tokens`.
    pub fn new(tokens: Arc<ServiceTokens>) -> Self {
        Self { tokens }
    }
}

impl tonic::service::Interceptor for ServiceIdentity {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = self.tokens.token()?;
        attach_bearer(&mut request, &token)?;
        Ok(request)
    }
}
