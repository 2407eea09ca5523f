//! tonic side: the server interceptor that validates every call, and helpers for
//! clients to attach credentials.

use std::sync::{Arc, OnceLock};

use tonic::metadata::MetadataValue;
use tonic::{Request, Status};
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError};

use crate::keys::ServiceTokens;
use crate::principal::{Principal, PrincipalKind};
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
    crate::bearer_token(metadata.get("authorization")?.to_str().ok()?)
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

/// Metadata key of the request id the gateway forwards (see [`crate::request_id`]).
pub const REQUEST_ID: &str = "x-request-id";
/// Metadata key (and REST header) of the purpose of an access, e.g. `assistance`.
pub const PURPOSE: &str = "x-haven-purpose";
/// The purpose recorded when a caller states none.
pub const DEFAULT_PURPOSE: &str = "assistance";
/// Metadata key of the subject of the user a service acts for.
pub const ON_BEHALF_OF_SUBJECT: &str = "x-haven-on-behalf-of-subject";
/// Metadata key of the organisation of the user a service acts for.
pub const ON_BEHALF_OF_ORGANIZATION: &str = "x-haven-on-behalf-of-organization";
/// Longest subject accepted in [`ON_BEHALF_OF_SUBJECT`].
const MAX_SUBJECT: usize = 128;

/// The user a Haven service is acting for when it calls another service: the
/// audit trail records this user and organisation, not the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// The user's subject (`sub` claim).
    pub subject: String,
    /// The user's organisation (`org` claim).
    pub organization_id: Uuid,
}

/// What a call carries for the audit trail besides its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The caller's request id if it follows [`crate::request_id`]'s rule, else a
    /// fresh one.
    pub request_id: String,
    /// The stated purpose, a short lower-case code.
    pub purpose: String,
    /// The user a calling service acts for; only ever set for a service principal.
    pub on_behalf_of: Option<OnBehalfOf>,
}

/// The request id, the stated purpose and (for a calling service) the user it acts
/// for, of a call made by `principal`.
///
/// - A request id that breaks [`crate::request_id`]'s rule, or none, is replaced by
///   a fresh one: what a client sends there is never stored or echoed.
/// - A purpose must be a short lower-case code (`assistance`, `referral`...), so free
///   text, and with it personal data, cannot reach the trail.
/// - Only a service may say whom it acts for: a user sending the on-behalf-of
///   metadata is refused, so nobody can make the trail name someone else.
pub fn request_context<T>(
    request: &Request<T>,
    principal: &Principal,
) -> Result<RequestContext, HavenError> {
    let metadata = request.metadata();
    let request_id = crate::request_id::accept_or_generate(
        metadata
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok()),
    );
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
    let on_behalf_of = on_behalf_of(metadata, principal)?;
    Ok(RequestContext {
        request_id,
        purpose,
        on_behalf_of,
    })
}

fn on_behalf_of(
    metadata: &tonic::metadata::MetadataMap,
    principal: &Principal,
) -> Result<Option<OnBehalfOf>, HavenError> {
    let subject = metadata.get(ON_BEHALF_OF_SUBJECT);
    let organization = metadata.get(ON_BEHALF_OF_ORGANIZATION);
    if subject.is_none() && organization.is_none() {
        return Ok(None);
    }
    if principal.kind != PrincipalKind::Service {
        return Err(HavenError::new(
            ErrorCode::PermissionDenied,
            "only a Haven service may name the user it acts for",
        ));
    }
    let subject = subject
        .and_then(|value| value.to_str().ok())
        .filter(|subject| {
            (1..=MAX_SUBJECT).contains(&subject.len())
                && subject.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .ok_or_else(|| {
            HavenError::invalid_field(
                ON_BEHALF_OF_SUBJECT,
                "must be a subject of 1 to 128 printable characters",
            )
        })?;
    let organization_id = organization
        .and_then(|value| value.to_str().ok())
        .and_then(|text| Uuid::parse_str(text).ok())
        .ok_or_else(|| HavenError::invalid_field(ON_BEHALF_OF_ORGANIZATION, "must be a UUID"))?;
    Ok(Some(OnBehalfOf {
        subject: subject.to_owned(),
        organization_id,
    }))
}

/// Sets the request id, the purpose and the user a service acts for on an outgoing
/// call to another service, so the callee's audit trail names that user.
pub fn attach_request_context<T>(
    request: &mut Request<T>,
    request_id: &str,
    purpose: &str,
    on_behalf_of: Option<&OnBehalfOf>,
) -> Result<(), HavenError> {
    let invalid = |key: &str| {
        HavenError::internal(std::io::Error::other(format!(
            "{key} is not valid metadata"
        )))
    };
    let metadata = request.metadata_mut();
    if crate::request_id::is_valid(request_id) {
        let value = MetadataValue::try_from(request_id).map_err(|_| invalid(REQUEST_ID))?;
        metadata.insert(REQUEST_ID, value);
    }
    let value = MetadataValue::try_from(purpose).map_err(|_| invalid(PURPOSE))?;
    metadata.insert(PURPOSE, value);
    if let Some(user) = on_behalf_of {
        let subject = MetadataValue::try_from(user.subject.as_str())
            .map_err(|_| invalid(ON_BEHALF_OF_SUBJECT))?;
        metadata.insert(ON_BEHALF_OF_SUBJECT, subject);
        let organization = MetadataValue::try_from(user.organization_id.to_string())
            .map_err(|_| invalid(ON_BEHALF_OF_ORGANIZATION))?;
        metadata.insert(ON_BEHALF_OF_ORGANIZATION, organization);
    }
    Ok(())
}

fn is_purpose_code(purpose: &str) -> bool {
    (1..=32).contains(&purpose.len())
        && purpose.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A call to a Haven method that an authenticated caller was refused
/// (`PERMISSION_DENIED`) or answered `NOT_FOUND` (which is also what a record of
/// another organisation answers): a probe, or a mistake, worth a trace.
#[derive(Debug, Clone)]
pub struct RefusedCall {
    /// Who called.
    pub principal: Principal,
    /// The gRPC method, e.g. `/haven.intake.v1.IntakeService/GetScreening`.
    pub method: String,
    /// Not found rather than denied.
    pub not_found: bool,
    /// The request id the call carried (already checked for shape).
    pub request_id: String,
}

/// Where a gRPC server reports refused calls, e.g. an aggregating audit recorder.
/// `record` must not block: it runs on the response path.
pub trait RefusalSink: Send + Sync + std::fmt::Debug {
    /// Notes one refused call.
    fn record(&self, call: RefusedCall);
}
