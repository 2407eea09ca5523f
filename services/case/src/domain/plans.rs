//! An individual reintegration plan: its goals by need domain and their actions. The
//! goals and actions are the plan's encrypted content (serialised as JSON); statuses
//! and the approval are kept beside it.

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use haven_proto::case::v1 as pb;

use super::{ActionStatus, ApprovalStatus, NeedDomain};

/// An action of a plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanAction {
    /// Id.
    pub id: Uuid,
    /// What is to be done.
    pub description: String,
    /// Who is responsible.
    pub responsible_organization_id: Uuid,
    /// By when.
    pub due_on: Date,
    /// Status (kept outside the encrypted content, so it is not serialised there).
    #[serde(skip, default = "planned")]
    pub status: ActionStatus,
}

fn planned() -> ActionStatus {
    ActionStatus::Planned
}

/// A goal of a plan, in one domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanGoal {
    /// The domain.
    #[serde(with = "need_domain_text")]
    pub domain: NeedDomain,
    /// The goal.
    pub goal: String,
    /// Actions towards it.
    pub actions: Vec<PlanAction>,
}

mod need_domain_text {
    use super::NeedDomain;

    pub(super) fn serialize<S: serde::Serializer>(
        domain: &NeedDomain,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(domain.as_str())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<NeedDomain, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        NeedDomain::parse(&text).ok_or_else(|| serde::de::Error::custom("unknown domain"))
    }
}

/// One version of an individual reintegration plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The case.
    pub case_id: Uuid,
    /// 1, 2, ... per case.
    pub plan_version: i32,
    /// Goals; empty if the plan's content was destroyed with the person's data.
    pub goals: Vec<PlanGoal>,
    /// Approval.
    pub status: ApprovalStatus,
    /// Who submitted.
    pub submitted_by: String,
    /// When.
    pub submitted_at: OffsetDateTime,
    /// Who reviewed.
    pub reviewed_by: String,
    /// When.
    pub reviewed_at: Option<OffsetDateTime>,
    /// Review comment.
    pub review_comment: String,
    /// Concurrency version.
    pub version: i64,
}

impl Plan {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Plan {
        pb::Plan {
            case_id: self.case_id.to_string(),
            plan_version: u32::try_from(self.plan_version).unwrap_or_default(),
            goals: self
                .goals
                .iter()
                .map(|goal| pb::PlanGoal {
                    domain: goal.domain.to_proto().into(),
                    goal: goal.goal.clone(),
                    actions: goal
                        .actions
                        .iter()
                        .map(|action| pb::PlanAction {
                            id: action.id.to_string(),
                            description: action.description.clone(),
                            responsible_organization_id: action
                                .responsible_organization_id
                                .to_string(),
                            due_on: action.due_on.to_string(),
                            status: action.status.to_proto().into(),
                        })
                        .collect(),
                })
                .collect(),
            status: self.status.to_proto().into(),
            submitted_by: self.submitted_by.clone(),
            submitted_at: Some(haven_proto::timestamp(self.submitted_at)),
            reviewed_by: self.reviewed_by.clone(),
            reviewed_at: self.reviewed_at.map(haven_proto::timestamp),
            review_comment: self.review_comment.clone(),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}
