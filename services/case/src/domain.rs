//! Case values and their stored and wire forms.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_proto::case::v1 as pb;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    /// Being worked on.
    Active,
    /// Services ended, being followed up.
    FollowUp,
    /// Closed.
    Closed,
    /// Closed because the person was referred elsewhere.
    ClosedReferred,
}

/// Workflow stage of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStage {
    /// Just opened.
    New,
    /// Needs being assessed.
    Assessment,
    /// Individual reintegration plan being made.
    Plan,
    /// Services being delivered.
    Services,
    /// Monitoring.
    Monitoring,
    /// Closed.
    Closed,
}

haven_storage::stored_enum!(CaseStatus, pb::CaseStatus,
    Active => "active" / Active,
    FollowUp => "follow_up" / FollowUp,
    Closed => "closed" / Closed,
    ClosedReferred => "closed_referred" / ClosedReferred,
);

haven_storage::stored_enum!(CaseStage, pb::CaseStage,
    New => "new" / New,
    Assessment => "assessment" / Assessment,
    Plan => "plan" / Plan,
    Services => "services" / Services,
    Monitoring => "monitoring" / Monitoring,
    Closed => "closed" / Closed,
);

impl CaseStage {
    /// Whether the workflow allows moving from this stage to `to` by a stage change:
    /// forward one step, or back from services to plan and from monitoring to services
    /// (a plan revised, more services needed). Closing is a separate, approved workflow.
    pub fn can_move_to(self, to: CaseStage) -> bool {
        use CaseStage::*;
        matches!(
            (self, to),
            (New, Assessment)
                | (Assessment, Plan)
                | (Plan, Services)
                | (Services, Monitoring)
                | (Services, Plan)
                | (Monitoring, Services)
                | (Monitoring, Assessment)
        )
    }
}

/// Kind of needs assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssessmentKind {
    /// Of the person.
    Individual,
    /// Of the household.
    Household,
    /// Of the community the person returns to.
    Community,
}

haven_storage::stored_enum!(AssessmentKind, pb::AssessmentKind,
    Individual => "individual" / Individual,
    Household => "household" / Household,
    Community => "community" / Community,
);

/// A domain of needs scored by an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NeedDomain {
    /// Safety.
    Safety,
    /// Physical health.
    Health,
    /// Mental health and psychosocial well-being.
    MentalHealth,
    /// Legal.
    Legal,
    /// Housing.
    Housing,
    /// Education.
    Education,
    /// Livelihood and employment.
    Livelihood,
    /// Family and community.
    FamilyAndCommunity,
}

haven_storage::stored_enum!(NeedDomain, pb::NeedDomain,
    Safety => "safety" / Safety,
    Health => "health" / Health,
    MentalHealth => "mental_health" / MentalHealth,
    Legal => "legal" / Legal,
    Housing => "housing" / Housing,
    Education => "education" / Education,
    Livelihood => "livelihood" / Livelihood,
    FamilyAndCommunity => "family_and_community" / FamilyAndCommunity,
);

/// An assessment of needs: a score from 1 (critical) to 5 (fully met) per domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Kind.
    pub kind: AssessmentKind,
    /// Scores, by domain.
    pub scores: Vec<(NeedDomain, u8)>,
    /// When assessed.
    pub assessed_at: OffsetDateTime,
    /// Who assessed.
    pub assessed_by: String,
}

impl Assessment {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Assessment {
        pb::Assessment {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            kind: self.kind.to_proto().into(),
            scores: self
                .scores
                .iter()
                .map(|(domain, score)| pb::DomainScore {
                    domain: domain.to_proto().into(),
                    score: u32::from(*score),
                })
                .collect(),
            assessed_at: Some(haven_proto::timestamp(self.assessed_at)),
            assessed_by: self.assessed_by.clone(),
        }
    }
}

/// A stored case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Id.
    pub id: Uuid,
    /// Pseudonymous code.
    pub code: String,
    /// Owning organisation.
    pub organization_id: Uuid,
    /// The screening it was opened from.
    pub screening_id: Uuid,
    /// Status.
    pub status: CaseStatus,
    /// Stage.
    pub stage: CaseStage,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// Incremented on every change.
    pub version: i64,
    /// Position in creation order, for cursors.
    pub position: i64,
    /// Sealed by a legal decision: only admins and auditors may read it.
    pub sealed: bool,
    /// The person, by id (personal data stays in intake).
    pub person_id: Option<Uuid>,
}

impl Case {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Case {
        pb::Case {
            id: self.id.to_string(),
            code: self.code.clone(),
            organization_id: self.organization_id.to_string(),
            screening_id: self.screening_id.to_string(),
            status: self.status.to_proto().into(),
            stage: self.stage.to_proto().into(),
            opened_at: Some(haven_proto::timestamp(self.opened_at)),
            version: u64::try_from(self.version).unwrap_or_default(),
            sealed: self.sealed,
            person_id: self.person_id.map(|id| id.to_string()).unwrap_or_default(),
        }
    }
}

/// Formats a pseudonymous case code: prefix, year, six-digit number.
pub fn case_code(prefix: &str, year: i32, number: i64) -> String {
    format!("{prefix}-{year}-{number:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_moves_forward_and_never_closes_by_a_stage_change() {
        assert!(CaseStage::New.can_move_to(CaseStage::Assessment));
        assert!(
            !CaseStage::New.can_move_to(CaseStage::Services),
            "no skipping the plan"
        );
        assert!(CaseStage::Services.can_move_to(CaseStage::Plan));
        for stage in [
            CaseStage::New,
            CaseStage::Assessment,
            CaseStage::Plan,
            CaseStage::Services,
            CaseStage::Monitoring,
        ] {
            assert!(!stage.can_move_to(CaseStage::Closed), "{stage:?}");
            assert!(!stage.can_move_to(stage), "{stage:?}");
        }
        assert!(
            !CaseStage::Closed.can_move_to(CaseStage::Assessment),
            "reopening is its own workflow"
        );
    }

    #[test]
    fn codes_are_zero_padded_and_enums_round_trip() {
        assert_eq!(case_code("HV", 2026, 123), "HV-2026-000123");
        for status in [
            CaseStatus::Active,
            CaseStatus::FollowUp,
            CaseStatus::Closed,
            CaseStatus::ClosedReferred,
        ] {
            assert_eq!(CaseStatus::parse(status.as_str()), Some(status));
            assert_eq!(CaseStatus::from_proto(status.to_proto()), Some(status));
        }
        assert_eq!(CaseStatus::from_proto(pb::CaseStatus::Unspecified), None);
    }
}
