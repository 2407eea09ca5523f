//! Who is calling.

use uuid::Uuid;

use haven_error::{ErrorCode, HavenError};

use crate::policy::{self, Action, Role};

/// A user of an organisation, or another Haven service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, authenticated by a user token.
    User,
    /// A Haven service calling another (intake → case, reporting → feeds).
    Service,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` claim: a user id, or `service:<name>`.
    pub subject: String,
    /// `org` claim: the organisation whose data the caller may see.
    pub organization_id: Uuid,
    /// `roles` claim.
    pub roles: Vec<Role>,
    /// User or service.
    pub kind: PrincipalKind,
}

impl Principal {
    /// Whether any of the caller's roles allows the action.
    pub fn can(&self, action: Action) -> bool {
        self.roles.iter().any(|role| policy::allows(*role, action))
    }

    /// Fails with `PermissionDenied` unless the policy allows the action.
    pub fn require(&self, action: Action) -> Result<(), HavenError> {
        if self.can(action) {
            return Ok(());
        }
        Err(HavenError::new(
            ErrorCode::PermissionDenied,
            format!("your roles do not allow {}", action.as_str()),
        ))
    }

    /// Whether the caller may see records of `organization_id`. Services see all;
    /// users only their own organisation's.
    pub fn sees_organization(&self, organization_id: Uuid) -> bool {
        self.kind == PrincipalKind::Service || self.organization_id == organization_id
    }
}

/// Which organisations' rows a storage call may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every organisation (service identities only).
    All,
    /// One organisation.
    Organization(Uuid),
}

impl Scope {
    /// The scope of a caller.
    pub fn of(principal: &Principal) -> Self {
        match principal.kind {
            PrincipalKind::Service => Scope::All,
            PrincipalKind::User => Scope::Organization(principal.organization_id),
        }
    }

    /// The organisation to filter on, if any.
    pub fn organization(self) -> Option<Uuid> {
        match self {
            Scope::All => None,
            Scope::Organization(id) => Some(id),
        }
    }

    /// Whether a row of `organization_id` is inside the scope.
    pub fn contains(self, organization_id: Uuid) -> bool {
        self.organization().is_none_or(|id| id == organization_id)
    }
}
