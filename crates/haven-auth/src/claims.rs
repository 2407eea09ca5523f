//! The claims of a Haven token: what the verifier reads and the development and
//! service token issuers write.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims Haven reads. `exp`, `iss`, `aud`, `sub` are required by validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: user id or `service:<name>`.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Organisation id.
    pub org: Uuid,
    /// Role names.
    pub roles: Vec<String>,
}
