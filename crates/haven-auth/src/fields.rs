//! Field classification: what kind of information a field holds, and which roles may
//! receive each kind.
//!
//! Every field of every record Haven returns or emits is classed once, in a table
//! beside its schema (the proto field table in `haven-server`, the event payload
//! table in `haven-events`). What a caller receives is derived from [`may_receive`]:
//! a field whose class a role may not receive is removed, and a field missing from
//! the table is removed for everyone but services (deny by default).

use serde::{Deserialize, Serialize};

use crate::policy::Role;

/// What a field says about a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// Names a person or reaches them directly: names, birth dates, contacts,
    /// addresses, document numbers, a guardian's details.
    Identifying,
    /// Does not name a person alone but can single them out in combination: birth
    /// year, gender, citizenship, settlement, exploitation types, exact dates.
    QuasiIdentifier,
    /// Free text written about a person: reasons, notes, plan goals and actions,
    /// comments, purposes.
    Narrative,
    /// Ids, pseudonymous codes, states, counts and times of the workflow itself.
    Operational,
}

impl FieldClass {
    /// Every class.
    pub const ALL: [FieldClass; 4] = [
        FieldClass::Identifying,
        FieldClass::QuasiIdentifier,
        FieldClass::Narrative,
        FieldClass::Operational,
    ];

    /// The name used in tables and documentation, e.g. `quasi_identifier`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldClass::Identifying => "identifying",
            FieldClass::QuasiIdentifier => "quasi_identifier",
            FieldClass::Narrative => "narrative",
            FieldClass::Operational => "operational",
        }
    }
}

use FieldClass::*;

/// For each role, the classes of field it may receive. Anything not listed is
/// withheld. Analysts see aggregates only and auditors see the trail, never
/// personal data or narratives: both receive operational fields alone.
pub const FIELD_POLICY: &[(Role, &[FieldClass])] = &[
    (
        Role::Admin,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
    (
        Role::IntakeOfficer,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
    (
        Role::CaseWorker,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
    (
        Role::Supervisor,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
    // Receiving providers reach a person only through a referral to them, and then
    // what its disclosure names.
    (
        Role::ReferralCoordinator,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
    (Role::Analyst, &[Operational]),
    (Role::Auditor, &[Operational]),
    (
        Role::Service,
        &[Identifying, QuasiIdentifier, Narrative, Operational],
    ),
];

/// Whether `role` may receive a field of `class`.
pub fn may_receive(role: Role, class: FieldClass) -> bool {
    FIELD_POLICY
        .iter()
        .any(|(listed, classes)| *listed == role && classes.contains(&class))
}

/// Whether any of `roles` may receive a field of `class`.
pub fn any_may_receive(roles: &[Role], class: FieldClass) -> bool {
    roles.iter().any(|role| may_receive(*role, class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_appears_once() {
        for role in Role::ALL {
            assert_eq!(
                FIELD_POLICY
                    .iter()
                    .filter(|(listed, _)| *listed == role)
                    .count(),
                1,
                "{role:?}"
            );
        }
    }

    #[test]
    fn analysts_and_auditors_receive_no_personal_data_or_narratives() {
        for role in [Role::Analyst, Role::Auditor] {
            for class in FieldClass::ALL {
                assert_eq!(
                    may_receive(role, class),
                    class == Operational,
                    "{role:?} {class:?}"
                );
            }
        }
        for role in Role::ALL {
            assert!(may_receive(role, Operational), "{role:?}");
        }
    }
}
