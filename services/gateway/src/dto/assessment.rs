//! The assessment parts of a screening: indicator answers, exploitation, risk.

use haven_proto::intake::v1 as intake;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::{ExploitationType, ImmediateNeed, IndicatorAnswer, RiskLevel};
use super::non_empty;

/// One indicator answered.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorResponse {
    /// Indicator code from the set.
    pub(crate) code: String,
    /// The answer.
    pub(crate) answer: IndicatorAnswer,
    /// Optional note (stored encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// Answers to one version of the indicator set.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndicatorAssessment {
    /// Version answered; default the newest.
    #[serde(default)]
    pub(crate) indicator_set_version: Option<u32>,
    /// Answers.
    pub(crate) answers: Vec<IndicatorResponse>,
}

/// Categorical facts about the exploitation (narrative belongs in case notes).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExploitationDetails {
    /// HTCDS types.
    #[serde(default)]
    pub(crate) types: Vec<ExploitationType>,
    /// This deployment's legal categories.
    #[serde(default)]
    pub(crate) local_categories: Vec<String>,
    /// Means of control codes, e.g. `debt_bondage`.
    #[serde(default)]
    pub(crate) means_of_control: Vec<String>,
    /// Recruitment method code, e.g. `job_offer`.
    #[serde(default)]
    pub(crate) recruitment_method: Option<String>,
    /// Relationship to the recruiter code, e.g. `acquaintance`.
    #[serde(default)]
    pub(crate) relationship_to_recruiter: Option<String>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub(crate) countries_of_origin: Vec<String>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub(crate) countries_of_transit: Vec<String>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub(crate) countries_of_exploitation: Vec<String>,
    /// Approximate start, `YYYY` or `YYYY-MM`.
    #[serde(default)]
    pub(crate) started: Option<String>,
    /// Approximate end, `YYYY` or `YYYY-MM`.
    #[serde(default)]
    pub(crate) ended: Option<String>,
}

/// Risk level, factors and immediate needs.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RiskAssessment {
    /// Level.
    pub(crate) level: RiskLevel,
    /// Risk factor codes, e.g. `trafficker_contact`.
    #[serde(default)]
    pub(crate) factors: Vec<String>,
    /// Immediate needs.
    #[serde(default)]
    pub(crate) immediate_needs: Vec<ImmediateNeed>,
}

impl From<IndicatorAssessment> for intake::IndicatorAssessment {
    fn from(assessment: IndicatorAssessment) -> Self {
        Self {
            indicator_set_version: assessment.indicator_set_version.unwrap_or(0),
            answers: assessment
                .answers
                .into_iter()
                .map(|response| intake::IndicatorResponse {
                    code: response.code,
                    answer: response.answer.to_proto(),
                    note: response.note.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl From<intake::IndicatorAssessment> for IndicatorAssessment {
    fn from(assessment: intake::IndicatorAssessment) -> Self {
        Self {
            indicator_set_version: Some(assessment.indicator_set_version),
            answers: assessment
                .answers
                .into_iter()
                .filter_map(|response| {
                    Some(IndicatorResponse {
                        answer: IndicatorAnswer::from_proto(response.answer)?,
                        code: response.code,
                        note: non_empty(response.note),
                    })
                })
                .collect(),
        }
    }
}

impl From<ExploitationDetails> for intake::ExploitationDetails {
    fn from(details: ExploitationDetails) -> Self {
        Self {
            types: details
                .types
                .into_iter()
                .map(ExploitationType::to_proto)
                .collect(),
            local_categories: details.local_categories,
            means_of_control: details.means_of_control,
            recruitment_method: details.recruitment_method.unwrap_or_default(),
            relationship_to_recruiter: details.relationship_to_recruiter.unwrap_or_default(),
            countries_of_origin: details.countries_of_origin,
            countries_of_transit: details.countries_of_transit,
            countries_of_exploitation: details.countries_of_exploitation,
            started: details.started.unwrap_or_default(),
            ended: details.ended.unwrap_or_default(),
        }
    }
}

impl From<intake::ExploitationDetails> for ExploitationDetails {
    fn from(details: intake::ExploitationDetails) -> Self {
        Self {
            types: details
                .types
                .into_iter()
                .filter_map(ExploitationType::from_proto)
                .collect(),
            local_categories: details.local_categories,
            means_of_control: details.means_of_control,
            recruitment_method: non_empty(details.recruitment_method),
            relationship_to_recruiter: non_empty(details.relationship_to_recruiter),
            countries_of_origin: details.countries_of_origin,
            countries_of_transit: details.countries_of_transit,
            countries_of_exploitation: details.countries_of_exploitation,
            started: non_empty(details.started),
            ended: non_empty(details.ended),
        }
    }
}

impl From<RiskAssessment> for intake::RiskAssessment {
    fn from(risk: RiskAssessment) -> Self {
        Self {
            level: risk.level.to_proto(),
            factors: risk.factors,
            immediate_needs: risk
                .immediate_needs
                .into_iter()
                .map(ImmediateNeed::to_proto)
                .collect(),
        }
    }
}

impl RiskAssessment {
    /// From the wire; `None` when the level is unset.
    pub(crate) fn from_proto(risk: intake::RiskAssessment) -> Option<Self> {
        Some(Self {
            level: RiskLevel::from_proto(risk.level)?,
            factors: risk.factors,
            immediate_needs: risk
                .immediate_needs
                .into_iter()
                .filter_map(ImmediateNeed::from_proto)
                .collect(),
        })
    }
}

/// Body of `PATCH /v1/screenings/{id}`: each part given replaces the stored one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateScreening {
    /// Indicator answers.
    #[serde(default)]
    pub(crate) indicators: Option<IndicatorAssessment>,
    /// Exploitation details.
    #[serde(default)]
    pub(crate) exploitation: Option<ExploitationDetails>,
    /// Risk.
    #[serde(default)]
    pub(crate) risk: Option<RiskAssessment>,
}
