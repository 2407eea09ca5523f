//! tonic side: the server interceptor that validates every call, and helpers for
//! clients to attach credentials.

use std::sync::{Arc, OnceLock};

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
        if let Some(slot) = request.extensions().get::<CallerSlot>() {
            // Set once per call: a second interceptor on the same call cannot change it.
            let _ = slot.0.set(principal.clone());
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// A place for [`AuthInterceptor`] to leave the authenticated caller, for a layer
/// outside the service (which sees only HTTP) that needs it after the call: the layer
/// puts an empty slot in the request's extensions, the interceptor fills it.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<Principal>>);

impl CallerSlot {
    /// The caller, once the interceptor has authenticated the call.
    pub fn principal(&self) -> Option<&Principal> {
        self.0.get()
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

/// Metadata key of the request id the gateway forwards.
pub const REQUEST_ID: &str = "x-request-id";
/// Metadata key (and REST header) of the purpose of an access, e.g. `assistance`.
pub const PURPOSE: &str = "x-haven-purpose";
/// The purpose recorded when a caller states none.
pub const DEFAULT_PURPOSE: &str = "assistance";

/// The request id and the stated purpose of a call, for the audit trail. A purpose
/// must be a short lower-case code (`assistance`, `referral`, `legal_proceedings`...),
/// so free text, and with it personal data, cannot reach the trail.
pub fn request_context<T>(request: &Request<T>) -> Result<(String, String), HavenError> {
    let metadata = request.metadata();
    let request_id = metadata
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default()
        .to_owned();
    let purpose = match metadata.get(PURPOSE).map(|value| value.to_str()) {
        None => DEFAULT_PURPOSE.to_owned(),
        Some(Ok(purpose)) if is_purpose_code(purpose) => purpose.to_owned(),
        Some(_) => {
            return Err(HavenError::invalid_field(
                PURPOSE,
                "must be a lower-case code of letters and underscores, at most 32 long",
            ));
        }
    };
    Ok((request_id, purpose))
}

fn is_purpose_code(purpose: &str) -> bool {
    (1..=32).contains(&purpose.len())
        && purpose.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}
