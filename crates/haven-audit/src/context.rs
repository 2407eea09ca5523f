//! Who is acting, and why: what every audited storage call receives.

use uuid::Uuid;

use haven_auth::{Action, Principal};
use haven_error::HavenError;

use crate::entry::NewAuditEntry;

/// The caller of one request, with the purpose and request id the audit trail
/// records. Storage calls that touch a person or a case take one.
#[derive(Debug, Clone)]
pub struct AuditContext {
    /// The authenticated caller.
    pub principal: Principal,
    /// Why the data is accessed, e.g. `assistance` (a short code, never free text).
    pub purpose: String,
    /// The request id, to find the matching log lines.
    pub request_id: String,
}

impl AuditContext {
    /// The authenticated caller of a gRPC request, after checking the policy allows
    /// `action`, with the request id and stated purpose from its metadata.
    pub fn from_request<T>(
        request: &tonic::Request<T>,
        action: Action,
    ) -> Result<Self, HavenError> {
        let principal = haven_auth::grpc::principal(request)?;
        principal.require(action)?;
        let (request_id, purpose) = haven_auth::grpc::request_context(request)?;
        Ok(Self {
            principal,
            purpose,
            request_id,
        })
    }

    /// The entry recording `action` on a record.
    pub fn entry(
        &self,
        action: &'static str,
        record_type: &'static str,
        record_id: Uuid,
    ) -> NewAuditEntry {
        NewAuditEntry::for_principal(
            &self.principal,
            action,
            record_type,
            record_id,
            self.purpose.clone(),
            self.request_id.clone(),
        )
    }
}
