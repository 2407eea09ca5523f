//! Individual reintegration plans: versions submitted for approval, goals by domain,
//! and the actions whose status is tracked once a version is approved.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::{ActionStatus, ApprovalStatus, NeedDomain};
use super::{from_timestamp, non_empty, require_date};

/// Body of `POST /v1/cases/{id}/plans`: a new version of the plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitPlan {
    /// Goals, one or more per domain.
    pub(crate) goals: Vec<NewPlanGoal>,
}

/// A goal of a plan being submitted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPlanGoal {
    /// Domain of needs the goal addresses.
    pub(crate) domain: NeedDomain,
    /// The goal.
    pub(crate) goal: String,
    /// Actions towards it.
    #[serde(default)]
    pub(crate) actions: Vec<NewPlanAction>,
}

/// An action of a plan being submitted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPlanAction {
    /// What is to be done.
    pub(crate) description: String,
    /// Organisation responsible for it.
    pub(crate) responsible_organization_id: uuid::Uuid,
    /// By when, `YYYY-MM-DD`.
    #[schema(format = Date, example = "2026-06-30")]
    pub(crate) due_on: String,
}

impl SubmitPlan {
    /// Validates the body into the gRPC request for case `case_id`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
    ) -> Result<case::SubmitPlanRequest, HavenError> {
        let mut goals = Vec::with_capacity(self.goals.len());
        for (goal_index, goal) in self.goals.into_iter().enumerate() {
            let at = format!("goals[{goal_index}]");
            let mut actions = Vec::with_capacity(goal.actions.len());
            for (action_index, action) in goal.actions.into_iter().enumerate() {
                let at = format!("{at}.actions[{action_index}]");
                require_date(&format!("{at}.due_on"), &action.due_on)?;
                actions.push(case::PlanAction {
                    id: String::new(),
                    description: action.description,
                    responsible_organization_id: action.responsible_organization_id.to_string(),
                    due_on: action.due_on,
                    status: case::ActionStatus::Unspecified as i32,
                });
            }
            goals.push(case::PlanGoal {
                domain: goal.domain.to_proto(),
                goal: goal.goal,
                actions,
            });
        }
        Ok(case::SubmitPlanRequest {
            case_id: case_id.to_string(),
            goals,
        })
    }
}

/// One version of a case's individual reintegration plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Plan {
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// 1, 2, ... per case.
    pub(crate) plan_version: u32,
    /// Goals; empty once the person's data was erased.
    pub(crate) goals: Vec<PlanGoal>,
    /// Where its approval stands.
    pub(crate) status: Option<ApprovalStatus>,
    /// Who submitted it.
    pub(crate) submitted_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) submitted_at: Option<OffsetDateTime>,
    /// Who approved or rejected it; `null` while requested.
    pub(crate) reviewed_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) reviewed_at: Option<OffsetDateTime>,
    /// The reviewer's comment.
    pub(crate) review_comment: Option<String>,
    /// Incremented by every change (review, action status); also sent as the `ETag`.
    pub(crate) version: u64,
}

/// A goal of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanGoal {
    /// Domain of needs.
    pub(crate) domain: Option<NeedDomain>,
    /// The goal.
    pub(crate) goal: String,
    /// Actions towards it.
    pub(crate) actions: Vec<PlanAction>,
}

/// An action of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanAction {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// What is to be done.
    pub(crate) description: String,
    /// Organisation responsible for it.
    #[schema(format = Uuid)]
    pub(crate) responsible_organization_id: String,
    /// By when, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) due_on: Option<String>,
    /// Status.
    pub(crate) status: Option<ActionStatus>,
}

impl From<case::Plan> for Plan {
    fn from(plan: case::Plan) -> Self {
        Self {
            case_id: plan.case_id,
            plan_version: plan.plan_version,
            goals: plan
                .goals
                .into_iter()
                .map(|goal| PlanGoal {
                    domain: NeedDomain::from_proto(goal.domain),
                    goal: goal.goal,
                    actions: goal
                        .actions
                        .into_iter()
                        .map(|action| PlanAction {
                            id: action.id,
                            description: action.description,
                            responsible_organization_id: action.responsible_organization_id,
                            due_on: non_empty(action.due_on),
                            status: ActionStatus::from_proto(action.status),
                        })
                        .collect(),
                })
                .collect(),
            status: ApprovalStatus::from_proto(plan.status),
            submitted_by: plan.submitted_by,
            submitted_at: from_timestamp(plan.submitted_at),
            reviewed_by: non_empty(plan.reviewed_by),
            reviewed_at: from_timestamp(plan.reviewed_at),
            review_comment: non_empty(plan.review_comment),
            version: plan.version,
        }
    }
}

/// A case's plan versions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanList {
    /// Plan versions.
    pub(crate) items: Vec<Plan>,
}

/// Body of `PATCH /v1/cases/{id}/plans/{plan_version}/actions/{action_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdatePlanAction {
    /// New status.
    pub(crate) status: ActionStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_due_date_is_named_by_its_path() {
        let body: SubmitPlan = serde_json::from_value(serde_json::json!({"goals": [
            {"domain": "housing", "goal": "Own flat", "actions": [
                {"description": "Find a flat", "responsible_organization_id": uuid::Uuid::nil(),
                 "due_on": "2026-06-30"},
                {"description": "Sign the lease", "responsible_organization_id": uuid::Uuid::nil(),
                 "due_on": "30/06/2026"},
            ]},
        ]}))
        .unwrap();
        let error = body.into_proto(uuid::Uuid::nil()).unwrap_err();
        assert_eq!(error.violations()[0].field, "goals[0].actions[1].due_on");
    }
}
