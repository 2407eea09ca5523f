//! Who is acting, and why: what every audited storage call receives.

use uuid::Uuid;

use haven_auth::grpc::OnBehalfOf;
use haven_auth::{Action, Principal, PrincipalKind};
use haven_error::HavenError;

use crate::entry::{ActorKind, NewAuditEntry};

/// The caller of one request, with the purpose and request id the audit trail
/// records. Storage calls that touch a person or a case take one.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// The authenticated caller: what authorisation and scoping go by.
    pub principal: Principal,
    /// Why the data is accessed, e.g. `assistance` (a short code, never free text).
    pub purpose: String,
    /// The request id, to find the matching log lines.
    pub request_id: String,
    /// The user a calling service acts for, when `principal` is a Haven service
    /// relaying a user's request: the trail names this user and organisation, and
    /// the service as the hop. Only ever set from a service's call (see
    /// [`haven_auth::grpc::request_context`]).
    pub on_behalf_of: Option<OnBehalfOf>,
}

impl AuditContext {
    /// The caller's `Idempotency-Key` of a create, taken out of `message` (so the
    /// fingerprint is of the request without it), scoped to the caller.
    pub fn caller_key<M: prost::Message>(
        &self,
        operation: &str,
        message: &mut M,
        key_field: impl FnOnce(&mut M) -> &mut String,
    ) -> Result<Option<haven_storage::idempotency::CallerKey>, HavenError> {
        caller_key(&self.principal, operation, message, key_field)
    }

    /// The authenticated caller of a gRPC request, after checking the policy allows
    /// `action`, with the request id, stated purpose and (from a calling service)
    /// the user it acts for, from its metadata.
    pub fn from_request<T>(
        request: &tonic::Request<T>,
        action: Action,
    ) -> Result<Self, HavenError> {
        let principal = haven_auth::grpc::principal(request)?;
        principal.require(action)?;
        let context = haven_auth::grpc::request_context(request, &principal)?;
        Ok(Self {
            principal,
            purpose: context.purpose,
            request_id: context.request_id,
            on_behalf_of: context.on_behalf_of,
        })
    }

    /// The entry recording `action` on a record: the real user and organisation as
    /// actor, with the relaying service as the hop when there is one.
    pub fn entry(
        &self,
        action: &'static str,
        record_type: &'static str,
        record_id: Uuid,
    ) -> NewAuditEntry {
        let entry = NewAuditEntry::for_principal(
            &self.principal,
            action,
            record_type,
            record_id,
            self.purpose.clone(),
            self.request_id.clone(),
        );
        match &self.on_behalf_of {
            None => entry,
            Some(user) => NewAuditEntry {
                actor: user.subject.clone(),
                actor_kind: ActorKind::User,
                organization_id: user.organization_id,
                via: Some(self.principal.subject.clone()),
                ..entry
            },
        }
    }

    /// The user whose request this is, to name on a call to another service: the
    /// user this service was called for, else its own caller when that is a user,
    /// else nobody (a service acting on its own).
    pub fn real_user(&self) -> Option<OnBehalfOf> {
        if let Some(user) = &self.on_behalf_of {
            return Some(user.clone());
        }
        (self.principal.kind == PrincipalKind::User).then(|| OnBehalfOf {
            subject: self.principal.subject.clone(),
            organization_id: self.principal.organization_id,
        })
    }

    /// Sets this request's id, purpose and real user on a call this service makes to
    /// another one on the caller's behalf, so that service's trail names the user.
    pub fn forward<T>(&self, request: &mut tonic::Request<T>) -> Result<(), HavenError> {
        haven_auth::grpc::attach_request_context(
            request,
            &self.request_id,
            &self.purpose,
            self.real_user().as_ref(),
        )
    }
}

/// The `Idempotency-Key` of a create by `principal`, taken out of `message` (so the
/// fingerprint is of the request without it), scoped to the caller.
pub fn caller_key<M: prost::Message>(
    principal: &Principal,
    operation: &str,
    message: &mut M,
    key_field: impl FnOnce(&mut M) -> &mut String,
) -> Result<Option<haven_storage::idempotency::CallerKey>, HavenError> {
    haven_storage::idempotency::CallerKey::from_message(
        principal.organization_id,
        &principal.subject,
        operation,
        message,
        key_field,
    )
}
