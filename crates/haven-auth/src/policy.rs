//! The access policy: one role × action table, deny by default.
//!
//! Code asks [`allows`]; tests iterate [`POLICY`] and [`Action::ALL`] so the two can
//! never disagree.

use serde::{Deserialize, Serialize};

/// A role named in a token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Administers an organisation's Haven deployment.
    Admin,
    /// Screens presumed victims.
    IntakeOfficer,
    /// Runs cases.
    CaseWorker,
    /// Approves plans and closures, oversees caseworkers.
    Supervisor,
    /// Staff of a receiving provider handling referrals.
    ReferralCoordinator,
    /// Sees aggregates only.
    Analyst,
    /// Reads the audit trail, no narratives.
    Auditor,
    /// Keeps the national directory: registers organisations under their ids and
    /// manages any organisation's facilities. Sees no cases or personal data.
    DirectoryAdmin,
    /// Another Haven service. Only valid in service tokens.
    Service,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 9] = [
        Role::Admin,
        Role::IntakeOfficer,
        Role::CaseWorker,
        Role::Supervisor,
        Role::ReferralCoordinator,
        Role::Analyst,
        Role::Auditor,
        Role::DirectoryAdmin,
        Role::Service,
    ];

    /// The claim value, e.g. `case_worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::IntakeOfficer => "intake_officer",
            Role::CaseWorker => "case_worker",
            Role::Supervisor => "supervisor",
            Role::ReferralCoordinator => "referral_coordinator",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
            Role::DirectoryAdmin => "directory_admin",
            Role::Service => "service",
        }
    }

    /// Parses a claim value.
    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

/// Something a caller can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Create a screening.
    ScreeningCreate,
    /// Read screenings.
    ScreeningRead,
    /// Record consent on a screening.
    ConsentRecord,
    /// Record an identification decision.
    DecisionRecord,
    /// Open a case (service identity only: intake does it).
    CaseOpen,
    /// Read cases.
    CaseRead,
    /// Add an organisation to the directory.
    OrganizationCreate,
    /// Read the directory.
    OrganizationRead,
    /// Read aggregate reports.
    ReportRead,
    /// Read the caller's own organisation's operational totals: exact counts, so
    /// never another organisation's.
    SummaryRead,
    /// Stream a service's event feed.
    EventsWatch,
    /// Read a person's personal data (decrypted).
    PersonRead,
    /// Erase a person (crypto-shredding).
    PersonErase,
    /// Read who accessed a person (the audit trail about them).
    PersonAccessLogRead,
    /// Search for duplicates through blind indexes.
    DuplicateSearch,
    /// Seal a case after a legal decision.
    CaseSeal,
    /// Read a sealed case.
    CaseReadSealed,
    /// Read statutory clocks.
    ClockRead,
    /// Record that a clock's obligation was met.
    ClockComplete,
    /// Change the assessment parts of a screening.
    ScreeningUpdate,
    /// Read indicator sets.
    IndicatorSetRead,
    /// Publish a new indicator set version.
    IndicatorSetPublish,
    /// Work on a case: its workflow, assessments, plans, services, payments,
    /// follow-ups, notes, closure requests, transfer requests.
    CaseUpdate,
    /// Assign caseworkers to a case.
    CaseAssign,
    /// Accept or reject a case transferred to one's organisation.
    CaseTransferDecide,
    /// Approve or reject an individual reintegration plan.
    CasePlanApprove,
    /// Approve or reject the closure of a case.
    CaseClosureApprove,
    /// Read a case's notes meant for the case team.
    CaseNoteRead,
    /// Read notes restricted to supervisors.
    CaseNoteReadRestricted,
    /// Read facilities, search them, read the gazetteer.
    FacilityRead,
    /// Add or change facilities of one's own organisation.
    FacilityManage,
    /// Keep the directory across organisations: add or change another
    /// organisation's facilities, register an organisation under an id other than
    /// one's own.
    DirectoryManageAny,
    /// Read the coverage report.
    CoverageRead,
    /// Refer a case, and cancel or revoke one's own referrals.
    ReferralCreate,
    /// Read referrals sent by or to one's organisation.
    ReferralRead,
    /// Answer a referral to one's organisation: accept, decline, start, complete.
    ReferralRespond,
    /// Read what a referral discloses about the person.
    ReferralDisclosureRead,
    /// Share a person's fields with a referral's receiver (service identity only).
    PersonShareForReferral,
    /// Publish a record-level anonymised export (written to the release ledger).
    ReportExport,
    /// Read the release ledger.
    ReleaseRead,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 40] = [
        Action::ScreeningCreate,
        Action::ScreeningRead,
        Action::ConsentRecord,
        Action::DecisionRecord,
        Action::CaseOpen,
        Action::CaseRead,
        Action::OrganizationCreate,
        Action::OrganizationRead,
        Action::ReportRead,
        Action::SummaryRead,
        Action::EventsWatch,
        Action::PersonRead,
        Action::PersonErase,
        Action::PersonAccessLogRead,
        Action::DuplicateSearch,
        Action::CaseSeal,
        Action::CaseReadSealed,
        Action::ClockRead,
        Action::ClockComplete,
        Action::ScreeningUpdate,
        Action::IndicatorSetRead,
        Action::IndicatorSetPublish,
        Action::CaseUpdate,
        Action::CaseAssign,
        Action::CaseTransferDecide,
        Action::CasePlanApprove,
        Action::CaseClosureApprove,
        Action::CaseNoteRead,
        Action::CaseNoteReadRestricted,
        Action::FacilityRead,
        Action::FacilityManage,
        Action::DirectoryManageAny,
        Action::CoverageRead,
        Action::ReferralCreate,
        Action::ReferralRead,
        Action::ReferralRespond,
        Action::ReferralDisclosureRead,
        Action::PersonShareForReferral,
        Action::ReportExport,
        Action::ReleaseRead,
    ];

    /// Dotted name, e.g. `screening.create`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScreeningCreate => "screening.create",
            Action::ScreeningRead => "screening.read",
            Action::ConsentRecord => "consent.record",
            Action::DecisionRecord => "decision.record",
            Action::CaseOpen => "case.open",
            Action::CaseRead => "case.read",
            Action::OrganizationCreate => "organization.create",
            Action::OrganizationRead => "organization.read",
            Action::ReportRead => "report.read",
            Action::SummaryRead => "report.summary",
            Action::EventsWatch => "events.watch",
            Action::PersonRead => "person.read",
            Action::PersonErase => "person.erase",
            Action::PersonAccessLogRead => "person.access_log.read",
            Action::DuplicateSearch => "person.duplicate_search",
            Action::CaseSeal => "case.seal",
            Action::CaseReadSealed => "case.read_sealed",
            Action::ClockRead => "clock.read",
            Action::ClockComplete => "clock.complete",
            Action::ScreeningUpdate => "screening.update",
            Action::IndicatorSetRead => "indicator_set.read",
            Action::IndicatorSetPublish => "indicator_set.publish",
            Action::CaseUpdate => "case.update",
            Action::CaseAssign => "case.assign",
            Action::CaseTransferDecide => "case.transfer_decide",
            Action::CasePlanApprove => "case.plan_approve",
            Action::CaseClosureApprove => "case.closure_approve",
            Action::CaseNoteRead => "case.note.read",
            Action::CaseNoteReadRestricted => "case.note.read_restricted",
            Action::FacilityRead => "facility.read",
            Action::FacilityManage => "facility.manage",
            Action::DirectoryManageAny => "directory.manage_any",
            Action::CoverageRead => "coverage.read",
            Action::ReferralCreate => "referral.create",
            Action::ReferralRead => "referral.read",
            Action::ReferralRespond => "referral.respond",
            Action::ReferralDisclosureRead => "referral.disclosure.read",
            Action::PersonShareForReferral => "person.share_for_referral",
            Action::ReportExport => "report.export",
            Action::ReleaseRead => "release.read",
        }
    }
}

use Action::*;

/// The policy: for each role, the actions it allows. Anything not listed is denied.
pub const POLICY: &[(Role, &[Action])] = &[
    (
        Role::Admin,
        &[
            ScreeningCreate,
            ScreeningRead,
            ConsentRecord,
            DecisionRecord,
            CaseRead,
            OrganizationCreate,
            OrganizationRead,
            ReportRead,
            SummaryRead,
            EventsWatch,
            PersonRead,
            PersonErase,
            PersonAccessLogRead,
            DuplicateSearch,
            CaseSeal,
            CaseReadSealed,
            ClockRead,
            ClockComplete,
            ScreeningUpdate,
            IndicatorSetRead,
            IndicatorSetPublish,
            CaseUpdate,
            CaseAssign,
            CaseTransferDecide,
            CasePlanApprove,
            CaseClosureApprove,
            CaseNoteRead,
            CaseNoteReadRestricted,
            FacilityRead,
            FacilityManage,
            CoverageRead,
            ReferralCreate,
            ReferralRead,
            ReferralRespond,
            ReferralDisclosureRead,
            ReportExport,
            ReleaseRead,
        ],
    ),
    (
        Role::IntakeOfficer,
        &[
            ScreeningCreate,
            ScreeningRead,
            ConsentRecord,
            DecisionRecord,
            OrganizationRead,
            PersonRead,
            DuplicateSearch,
            ClockRead,
            ClockComplete,
            ScreeningUpdate,
            IndicatorSetRead,
            FacilityRead,
        ],
    ),
    (
        Role::CaseWorker,
        &[
            ScreeningRead,
            ConsentRecord,
            CaseRead,
            OrganizationRead,
            PersonRead,
            IndicatorSetRead,
            CaseUpdate,
            CaseNoteRead,
            FacilityRead,
            ReferralCreate,
            ReferralRead,
            ReferralDisclosureRead,
        ],
    ),
    (
        Role::Supervisor,
        &[
            ScreeningRead,
            ConsentRecord,
            DecisionRecord,
            CaseRead,
            OrganizationRead,
            ReportRead,
            SummaryRead,
            PersonRead,
            PersonAccessLogRead,
            DuplicateSearch,
            CaseSeal,
            ClockRead,
            ClockComplete,
            ScreeningUpdate,
            IndicatorSetRead,
            CaseUpdate,
            CaseAssign,
            CaseTransferDecide,
            CasePlanApprove,
            CaseClosureApprove,
            CaseNoteRead,
            CaseNoteReadRestricted,
            FacilityRead,
            CoverageRead,
            ReferralCreate,
            ReferralRead,
            ReferralRespond,
            ReferralDisclosureRead,
            ReportExport,
            ReleaseRead,
        ],
    ),
    // Staff of a receiving provider: their facilities and the referrals to them.
    (
        Role::ReferralCoordinator,
        &[
            OrganizationRead,
            FacilityRead,
            FacilityManage,
            CoverageRead,
            ReferralRead,
            ReferralRespond,
            ReferralDisclosureRead,
        ],
    ),
    (
        Role::Analyst,
        &[
            OrganizationRead,
            ReportRead,
            SummaryRead,
            EventsWatch,
            FacilityRead,
            CoverageRead,
            ReportExport,
            ReleaseRead,
        ],
    ),
    // Auditors read the trail and (sealed) cases, never personal data or narratives.
    (
        Role::Auditor,
        &[
            ScreeningRead,
            CaseRead,
            CaseReadSealed,
            OrganizationRead,
            PersonAccessLogRead,
            FacilityRead,
            ReferralRead,
            ReleaseRead,
        ],
    ),
    // The directory's keeper: organisations and facilities of every organisation,
    // nothing about people. No other role may touch another organisation's entries.
    (
        Role::DirectoryAdmin,
        &[
            OrganizationCreate,
            OrganizationRead,
            FacilityRead,
            FacilityManage,
            DirectoryManageAny,
            CoverageRead,
        ],
    ),
    (
        Role::Service,
        &[
            ScreeningRead,
            CaseOpen,
            CaseRead,
            OrganizationRead,
            EventsWatch,
            FacilityRead,
            PersonShareForReferral,
        ],
    ),
];

/// Whether `role` may perform `action`.
pub fn allows(role: Role, action: Action) -> bool {
    POLICY
        .iter()
        .any(|(listed, actions)| *listed == role && actions.contains(&action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_appears_once_in_the_policy() {
        for role in Role::ALL {
            assert_eq!(
                POLICY.iter().filter(|(listed, _)| *listed == role).count(),
                1,
                "{role:?}"
            );
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }

    #[test]
    fn only_directory_admins_manage_other_organisations_entries() {
        for role in Role::ALL {
            assert_eq!(
                allows(role, DirectoryManageAny),
                role == Role::DirectoryAdmin,
                "{role:?}"
            );
        }
        for action in [
            PersonRead,
            ScreeningRead,
            CaseRead,
            ReferralRead,
            ReportRead,
        ] {
            assert!(!allows(Role::DirectoryAdmin, action), "{action:?}");
        }
    }

    #[test]
    fn only_services_open_cases_and_analysts_see_no_screenings() {
        for role in Role::ALL {
            assert_eq!(allows(role, CaseOpen), role == Role::Service, "{role:?}");
        }
        assert!(!allows(Role::Analyst, ScreeningRead));
        assert!(!allows(Role::Analyst, CaseRead));
        assert!(allows(Role::Analyst, ReportRead));
        for role in Role::ALL {
            assert_eq!(
                allows(role, ReportRead) && allows(role, ReportExport),
                matches!(role, Role::Admin | Role::Supervisor | Role::Analyst),
                "{role:?}: reports are for analysts, supervisors and admins"
            );
        }
    }

    #[test]
    fn personal_data_is_closed_to_analysts_auditors_and_services() {
        for role in [
            Role::Analyst,
            Role::Auditor,
            Role::Service,
            Role::ReferralCoordinator,
        ] {
            assert!(!allows(role, PersonRead), "{role:?}");
            assert!(!allows(role, CaseNoteRead), "{role:?} reads no narratives");
            assert!(
                !allows(role, ReferralDisclosureRead) || role == Role::ReferralCoordinator,
                "{role:?}"
            );
        }
        for role in Role::ALL {
            assert_eq!(allows(role, PersonErase), role == Role::Admin, "{role:?}");
            assert_eq!(
                allows(role, CasePlanApprove),
                matches!(role, Role::Admin | Role::Supervisor),
                "{role:?}: plans are approved by supervisors"
            );
            assert!(!allows(role, CaseNoteRead) || allows(role, CaseRead));
            assert_eq!(
                allows(role, PersonShareForReferral),
                role == Role::Service,
                "{role:?}: only the referral service asks intake to share"
            );
            assert_eq!(
                allows(role, CaseReadSealed),
                matches!(role, Role::Admin | Role::Auditor),
                "{role:?}"
            );
        }
    }
}
