//! Which screenings, persons and clocks one call may touch: the caller's
//! organisations, and records sealed with their case only for those who may read
//! sealed cases. Every store call takes a [`Reach`], so no path reads a sealed record
//! without deciding on it.

use uuid::Uuid;

use haven_auth::{Action, Principal, Scope};

/// The records a storage call may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    scope: Scope,
    sealed: bool,
}

impl Reach {
    /// Intake's own background work (linking a case it opened): every record.
    pub const INTERNAL: Reach = Reach {
        scope: Scope::All,
        sealed: true,
    };

    /// What `principal` may see: their organisation (services: all), and sealed
    /// records only with the `CaseReadSealed` action.
    pub fn of(principal: &Principal) -> Self {
        Self {
            scope: Scope::of(principal),
            sealed: principal.can(Action::CaseReadSealed),
        }
    }

    /// The organisation to filter on, if any.
    pub fn organization(self) -> Option<Uuid> {
        self.scope.organization()
    }

    /// Whether a row of `organization_id` is inside the reach.
    pub fn contains(self, organization_id: Uuid) -> bool {
        self.scope.contains(organization_id)
    }

    /// Whether sealed records are visible.
    pub fn sees_sealed(self) -> bool {
        self.sealed
    }
}

/// A scope without sealed records.
impl From<Scope> for Reach {
    fn from(scope: Scope) -> Self {
        Self {
            scope,
            sealed: false,
        }
    }
}
