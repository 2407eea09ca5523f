//! The assessment parts of a screening — indicator answers, exploitation details, risk —
//! and the indicator sets they answer. All categorical: codes, never narrative.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use haven_error::{HavenError, HavenResult};
use haven_proto::intake::v1 as pb;

/// The indicator set shipped with Haven, published as version 1 on first start.
pub const DEFAULT_SET: &str = include_str!("../indicator-sets/default.json");

/// One indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// Stable code.
    pub code: String,
    /// Label shown to screening officers.
    pub label: String,
}

/// Indicators grouped by the exploitation type they point to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorGroup {
    /// Exploitation type code, or `general`.
    pub exploitation_type: String,
    /// Indicators.
    pub indicators: Vec<Indicator>,
}

/// The content of an indicator set version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorSetDefinition {
    /// Name.
    pub name: String,
    /// Groups.
    pub groups: Vec<IndicatorGroup>,
}

/// A published indicator set version.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSet {
    /// Version, from 1.
    pub version: i32,
    /// Content.
    pub definition: IndicatorSetDefinition,
    /// When published.
    pub published_at: OffsetDateTime,
    /// By whom.
    pub published_by: String,
}

fn is_code(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn codes(field: &str, values: Vec<String>) -> HavenResult<Vec<String>> {
    values
        .into_iter()
        .map(|value| {
            let value = value.trim().to_owned();
            if is_code(&value) {
                Ok(value)
            } else {
                Err(HavenError::invalid_field(
                    field,
                    "must be lower-case codes (letters, digits, underscores)",
                ))
            }
        })
        .collect()
}

fn optional_code(field: &str, value: String) -> HavenResult<Option<String>> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    if !is_code(&value) {
        return Err(HavenError::invalid_field(
            field,
            "must be a lower-case code",
        ));
    }
    Ok(Some(value))
}

impl IndicatorSetDefinition {
    /// Validates a definition to publish: a name, at least one indicator, unique codes.
    pub fn from_proto(name: String, groups: Vec<pb::IndicatorGroup>) -> HavenResult<Self> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(HavenError::invalid_field(
                "name",
                "must be 1 to 200 characters",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut converted = Vec::with_capacity(groups.len());
        for group in groups {
            if !is_code(&group.exploitation_type) {
                return Err(HavenError::invalid_field(
                    "groups.exploitation_type",
                    "must be a lower-case code",
                ));
            }
            let mut indicators = Vec::with_capacity(group.indicators.len());
            for indicator in group.indicators {
                if !is_code(&indicator.code) || !seen.insert(indicator.code.clone()) {
                    return Err(HavenError::invalid_field(
                        "groups.indicators.code",
                        format!(
                            "`{}` must be a unique lower-case code",
                            indicator.code.escape_default()
                        ),
                    ));
                }
                let label = indicator.label.trim().to_owned();
                if label.is_empty() || label.chars().count() > 300 {
                    return Err(HavenError::invalid_field(
                        "groups.indicators.label",
                        "must be 1 to 300 characters",
                    ));
                }
                indicators.push(Indicator {
                    code: indicator.code,
                    label,
                });
            }
            converted.push(IndicatorGroup {
                exploitation_type: group.exploitation_type,
                indicators,
            });
        }
        if seen.is_empty() {
            return Err(HavenError::invalid_field(
                "groups",
                "must hold at least one indicator",
            ));
        }
        Ok(Self {
            name,
            groups: converted,
        })
    }

    /// Whether the set has an indicator with this code.
    pub fn has(&self, code: &str) -> bool {
        self.groups
            .iter()
            .flat_map(|group| &group.indicators)
            .any(|indicator| indicator.code == code)
    }
}

impl IndicatorSet {
    /// The wire form.
    pub fn to_proto(&self) -> pb::IndicatorSet {
        pb::IndicatorSet {
            version: u32::try_from(self.version).unwrap_or_default(),
            name: self.definition.name.clone(),
            groups: self
                .definition
                .groups
                .iter()
                .map(|group| pb::IndicatorGroup {
                    exploitation_type: group.exploitation_type.clone(),
                    indicators: group
                        .indicators
                        .iter()
                        .map(|indicator| pb::Indicator {
                            code: indicator.code.clone(),
                            label: indicator.label.clone(),
                        })
                        .collect(),
                })
                .collect(),
            published_at: Some(haven_proto::timestamp(self.published_at)),
            published_by: self.published_by.clone(),
        }
    }
}

/// An answer to one indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Present.
    Yes,
    /// Absent.
    No,
    /// Not known.
    Unknown,
}

/// Answers to one version of the indicator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorAnswers {
    /// The set version answered.
    pub version: i32,
    /// Code → answer, in the order given.
    pub answers: Vec<(String, Answer)>,
    /// Code → note. Narrative, so never part of the stored JSON: the store keeps it
    /// encrypted in its own column.
    #[serde(skip)]
    pub notes: std::collections::BTreeMap<String, String>,
}

impl IndicatorAnswers {
    /// Validates the wire form against the set it names.
    pub fn from_proto(
        assessment: pb::IndicatorAssessment,
        set: &IndicatorSet,
    ) -> HavenResult<Self> {
        let mut seen = std::collections::HashSet::new();
        let mut answers = Vec::with_capacity(assessment.answers.len());
        let mut notes = std::collections::BTreeMap::new();
        for (position, response) in assessment.answers.into_iter().enumerate() {
            let note = response.note.trim().to_owned();
            if note.chars().count() > 1000 || note.chars().any(char::is_control) {
                return Err(HavenError::invalid_field(
                    "indicators.answers.note",
                    "must be at most 1000 printable characters",
                ));
            }
            if !note.is_empty() {
                notes.insert(response.code.clone(), note);
            }
            if !set.definition.has(&response.code) {
                // The answer is named by its position, never by what was sent: an
                // error body must not carry back text a person typed.
                return Err(HavenError::invalid_field(
                    "indicators.answers.code",
                    format!(
                        "answer {position} names a code that is not in indicator set version {}",
                        set.version
                    ),
                ));
            }
            if !seen.insert(response.code.clone()) {
                return Err(HavenError::invalid_field(
                    "indicators.answers.code",
                    "each indicator is answered once",
                ));
            }
            let answer = match pb::IndicatorAnswer::try_from(response.answer) {
                Ok(pb::IndicatorAnswer::Yes) => Answer::Yes,
                Ok(pb::IndicatorAnswer::No) => Answer::No,
                Ok(pb::IndicatorAnswer::Unknown) => Answer::Unknown,
                _ => {
                    return Err(HavenError::invalid_field(
                        "indicators.answers.answer",
                        "must be yes, no or unknown",
                    ));
                }
            };
            answers.push((response.code, answer));
        }
        Ok(Self {
            version: set.version,
            answers,
            notes,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::IndicatorAssessment {
        pb::IndicatorAssessment {
            indicator_set_version: u32::try_from(self.version).unwrap_or_default(),
            answers: self
                .answers
                .iter()
                .map(|(code, answer)| pb::IndicatorResponse {
                    note: self.notes.get(code).cloned().unwrap_or_default(),
                    code: code.clone(),
                    answer: match answer {
                        Answer::Yes => pb::IndicatorAnswer::Yes,
                        Answer::No => pb::IndicatorAnswer::No,
                        Answer::Unknown => pb::IndicatorAnswer::Unknown,
                    }
                    .into(),
                })
                .collect(),
        }
    }
}

/// Categorical facts about the exploitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Exploitation {
    /// HTCDS types, as their lower-case names (e.g. `forced_labour`).
    pub types: Vec<String>,
    /// Deployment legal categories.
    pub local_categories: Vec<String>,
    /// Means of control codes.
    pub means_of_control: Vec<String>,
    /// Recruitment method code.
    pub recruitment_method: Option<String>,
    /// Relationship to the recruiter code.
    pub relationship_to_recruiter: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub countries_of_origin: Vec<String>,
    /// ISO 3166-1 alpha-2.
    pub countries_of_transit: Vec<String>,
    /// ISO 3166-1 alpha-2.
    pub countries_of_exploitation: Vec<String>,
    /// `YYYY` or `YYYY-MM`.
    pub started: Option<String>,
    /// `YYYY` or `YYYY-MM`.
    pub ended: Option<String>,
}

fn countries(field: &str, values: Vec<String>) -> HavenResult<Vec<String>> {
    values
        .into_iter()
        .map(|value| {
            let value = value.trim().to_ascii_uppercase();
            if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(value)
            } else {
                Err(HavenError::invalid_field(
                    field,
                    "must be ISO 3166-1 alpha-2 codes",
                ))
            }
        })
        .collect()
}

fn approximate_date(field: &str, value: String) -> HavenResult<Option<String>> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    let bytes = value.as_bytes();
    let year_ok = bytes.len() >= 4 && bytes[..4].iter().all(u8::is_ascii_digit);
    let month_ok = match bytes.len() {
        4 => true,
        7 => {
            bytes[4] == b'-'
                && matches!(
                    &value[5..7],
                    "01" | "02"
                        | "03"
                        | "04"
                        | "05"
                        | "06"
                        | "07"
                        | "08"
                        | "09"
                        | "10"
                        | "11"
                        | "12"
                )
        }
        _ => false,
    };
    if !(year_ok && month_ok) {
        return Err(HavenError::invalid_field(field, "must be YYYY or YYYY-MM"));
    }
    Ok(Some(value))
}

impl Exploitation {
    /// Validates the wire form; local categories must be among the deployment's.
    pub fn from_proto(
        details: pb::ExploitationDetails,
        local_categories: &[String],
    ) -> HavenResult<Self> {
        let mut types = Vec::with_capacity(details.types.len());
        for raw in details.types {
            match pb::ExploitationType::try_from(raw) {
                Ok(pb::ExploitationType::Unspecified) | Err(_) => {
                    return Err(HavenError::invalid_field(
                        "exploitation.types",
                        "unknown exploitation type",
                    ));
                }
                Ok(kind) => {
                    let name = kind
                        .as_str_name()
                        .trim_start_matches("EXPLOITATION_TYPE_")
                        .to_ascii_lowercase();
                    if !types.contains(&name) {
                        types.push(name);
                    }
                }
            }
        }
        let local = codes("exploitation.local_categories", details.local_categories)?;
        if let Some(position) = local
            .iter()
            .position(|category| !local_categories.contains(category))
        {
            return Err(HavenError::invalid_field(
                "exploitation.local_categories",
                format!("category {position} is not one of this deployment's categories"),
            ));
        }
        Ok(Self {
            types,
            local_categories: local,
            means_of_control: codes("exploitation.means_of_control", details.means_of_control)?,
            recruitment_method: optional_code(
                "exploitation.recruitment_method",
                details.recruitment_method,
            )?,
            relationship_to_recruiter: optional_code(
                "exploitation.relationship_to_recruiter",
                details.relationship_to_recruiter,
            )?,
            countries_of_origin: countries(
                "exploitation.countries_of_origin",
                details.countries_of_origin,
            )?,
            countries_of_transit: countries(
                "exploitation.countries_of_transit",
                details.countries_of_transit,
            )?,
            countries_of_exploitation: countries(
                "exploitation.countries_of_exploitation",
                details.countries_of_exploitation,
            )?,
            started: approximate_date("exploitation.started", details.started)?,
            ended: approximate_date("exploitation.ended", details.ended)?,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::ExploitationDetails {
        pb::ExploitationDetails {
            types: self
                .types
                .iter()
                .filter_map(|name| {
                    pb::ExploitationType::from_str_name(&format!(
                        "EXPLOITATION_TYPE_{}",
                        name.to_ascii_uppercase()
                    ))
                })
                .map(Into::into)
                .collect(),
            local_categories: self.local_categories.clone(),
            means_of_control: self.means_of_control.clone(),
            recruitment_method: self.recruitment_method.clone().unwrap_or_default(),
            relationship_to_recruiter: self.relationship_to_recruiter.clone().unwrap_or_default(),
            countries_of_origin: self.countries_of_origin.clone(),
            countries_of_transit: self.countries_of_transit.clone(),
            countries_of_exploitation: self.countries_of_exploitation.clone(),
            started: self.started.clone().unwrap_or_default(),
            ended: self.ended.clone().unwrap_or_default(),
        }
    }
}

/// Risk level and immediate needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// `low`, `medium` or `high`.
    pub level: String,
    /// Risk factor codes.
    pub factors: Vec<String>,
    /// Immediate needs, lower-case names (e.g. `shelter`).
    pub immediate_needs: Vec<String>,
}

impl Risk {
    /// Validates the wire form.
    pub fn from_proto(risk: pb::RiskAssessment) -> HavenResult<Self> {
        let level = match pb::RiskLevel::try_from(risk.level) {
            Ok(pb::RiskLevel::Low) => "low",
            Ok(pb::RiskLevel::Medium) => "medium",
            Ok(pb::RiskLevel::High) => "high",
            _ => {
                return Err(HavenError::invalid_field(
                    "risk.level",
                    "is required: low, medium or high",
                ));
            }
        };
        let mut immediate_needs = Vec::new();
        for raw in risk.immediate_needs {
            match pb::ImmediateNeed::try_from(raw) {
                Ok(pb::ImmediateNeed::Unspecified) | Err(_) => {
                    return Err(HavenError::invalid_field(
                        "risk.immediate_needs",
                        "unknown need",
                    ));
                }
                Ok(need) => {
                    let name = need
                        .as_str_name()
                        .trim_start_matches("IMMEDIATE_NEED_")
                        .to_ascii_lowercase();
                    if !immediate_needs.contains(&name) {
                        immediate_needs.push(name);
                    }
                }
            }
        }
        Ok(Self {
            level: level.to_owned(),
            factors: codes("risk.factors", risk.factors)?,
            immediate_needs,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::RiskAssessment {
        let level = match self.level.as_str() {
            "low" => pb::RiskLevel::Low,
            "medium" => pb::RiskLevel::Medium,
            "high" => pb::RiskLevel::High,
            _ => pb::RiskLevel::Unspecified,
        };
        pb::RiskAssessment {
            level: level.into(),
            factors: self.factors.clone(),
            immediate_needs: self
                .immediate_needs
                .iter()
                .filter_map(|name| {
                    pb::ImmediateNeed::from_str_name(&format!(
                        "IMMEDIATE_NEED_{}",
                        name.to_ascii_uppercase()
                    ))
                })
                .map(Into::into)
                .collect(),
        }
    }
}

/// The assessment parts a create or an update carries. `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssessmentParts {
    /// Indicator answers.
    pub indicators: Option<IndicatorAnswers>,
    /// Exploitation details.
    pub exploitation: Option<Exploitation>,
    /// Risk.
    pub risk: Option<Risk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_set_is_valid_and_answers_are_checked_against_it() {
        let definition: IndicatorSetDefinition = serde_json::from_str(DEFAULT_SET).unwrap();
        let set = IndicatorSet {
            version: 1,
            definition,
            published_at: OffsetDateTime::now_utc(),
            published_by: "haven".into(),
        };
        assert!(set.definition.has("document_retention"));
        let ok = pb::IndicatorAssessment {
            indicator_set_version: 1,
            answers: vec![pb::IndicatorResponse {
                code: "debt_bondage".into(),
                answer: pb::IndicatorAnswer::Yes.into(),
                note: String::new(),
            }],
        };
        assert_eq!(
            IndicatorAnswers::from_proto(ok, &set)
                .unwrap()
                .answers
                .len(),
            1
        );
        let unknown = pb::IndicatorAssessment {
            indicator_set_version: 1,
            answers: vec![pb::IndicatorResponse {
                code: "made_up".into(),
                answer: pb::IndicatorAnswer::Yes.into(),
                note: String::new(),
            }],
        };
        let error = IndicatorAnswers::from_proto(unknown, &set).unwrap_err();
        assert_eq!(error.violations()[0].field, "indicators.answers.code");
    }

    #[test]
    fn exploitation_and_risk_round_trip_and_refuse_bad_values() {
        let details = pb::ExploitationDetails {
            types: vec![pb::ExploitationType::ForcedLabour.into()],
            countries_of_origin: vec!["az".into()],
            countries_of_exploitation: vec!["RU".into()],
            started: "2025-03".into(),
            ..Default::default()
        };
        let exploitation = Exploitation::from_proto(details, &[]).unwrap();
        assert_eq!(exploitation.types, vec!["forced_labour"]);
        assert_eq!(exploitation.countries_of_origin, vec!["AZ"]);
        assert_eq!(
            Exploitation::from_proto(exploitation.to_proto(), &[]).unwrap(),
            exploitation
        );
        let local = pb::ExploitationDetails {
            local_categories: vec!["art_144_1".into()],
            ..Default::default()
        };
        assert!(Exploitation::from_proto(local.clone(), &[]).is_err());
        assert!(Exploitation::from_proto(local, &["art_144_1".into()]).is_ok());
        let bad_date = pb::ExploitationDetails {
            started: "03/2025".into(),
            ..Default::default()
        };
        assert!(Exploitation::from_proto(bad_date, &[]).is_err());
        let risk = Risk::from_proto(pb::RiskAssessment {
            level: pb::RiskLevel::High.into(),
            factors: vec!["trafficker_contact".into()],
            immediate_needs: vec![pb::ImmediateNeed::Shelter.into()],
        })
        .unwrap();
        assert_eq!(Risk::from_proto(risk.to_proto()).unwrap(), risk);
        assert!(Risk::from_proto(pb::RiskAssessment::default()).is_err());
    }
}
