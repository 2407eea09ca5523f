//! The checks of request fields the case API shares: enums, texts, times, review
//! decisions, plan versions and flags, each refused with the field named.

use haven_error::HavenError;
use haven_proto::case::v1 as pb;
use time::OffsetDateTime;

use haven_error::fields::parse_id;

use crate::domain::{CaseStage, CaseStatus, NeedDomain, ReviewDecision, RiskLevel};
use crate::store::CaseFilter;

/// Longest free text accepted in reasons and comments.
pub(super) const MAX_REASON: usize = 1_000;
/// Longest note.
pub(super) const MAX_NOTE: usize = 20_000;
/// Most goals in a plan, and actions per goal.
pub(super) const MAX_GOALS: usize = 20;

/// An optional enum field: UNSPECIFIED (0) is `None`, an unknown value an error.
pub(super) fn optional_enum<T>(
    value: i32,
    field: &str,
    parse: impl Fn(i32) -> Option<Option<T>>,
) -> Result<Option<T>, HavenError> {
    if value == 0 {
        return Ok(None);
    }
    parse(value)
        .flatten()
        .map(Some)
        .ok_or_else(|| HavenError::invalid_field(field, "is not one of the listed values"))
}

/// A required enum field.
pub(super) fn required_enum<T>(
    value: i32,
    field: &str,
    parse: impl Fn(i32) -> Option<Option<T>>,
) -> Result<T, HavenError> {
    optional_enum(value, field, parse)?.ok_or_else(|| {
        HavenError::invalid_field(field, "is required and must be one of the listed values")
    })
}

/// Trimmed text, required, at most `max` characters, no control characters but
/// line breaks.
pub(super) fn required_text(field: &str, value: &str, max: usize) -> Result<String, HavenError> {
    let text = optional_text(field, value, max)?;
    if text.is_empty() {
        return Err(HavenError::invalid_field(field, "must not be empty"));
    }
    Ok(text)
}

pub(super) fn optional_text(field: &str, value: &str, max: usize) -> Result<String, HavenError> {
    let text = value.trim();
    if text.chars().count() > max {
        return Err(HavenError::invalid_field(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if text
        .chars()
        .any(|character| character.is_control() && character != '\n' && character != '\t')
    {
        return Err(HavenError::invalid_field(
            field,
            "contains control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A user id (token subject) named in a request.
pub(super) fn subject_text(field: &str, value: &str) -> Result<String, HavenError> {
    let subject = value.trim();
    if subject.is_empty()
        || subject.len() > 200
        || subject
            .chars()
            .any(|character| character.is_control() || character.is_whitespace())
    {
        return Err(HavenError::invalid_field(
            field,
            "must be a user id (1 to 200 characters, no spaces)",
        ));
    }
    Ok(subject.to_owned())
}

/// A time not in the future (five minutes of clock skew allowed); `None` is now.
pub(super) fn past_time(
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<OffsetDateTime, HavenError> {
    let now = OffsetDateTime::now_utc();
    match value {
        None => Ok(now),
        Some(at) => haven_proto::from_timestamp(&at)
            .filter(|at| *at <= now + time::Duration::minutes(5))
            .ok_or_else(|| HavenError::invalid_field(field, "must be a time, not in the future")),
    }
}

pub(super) fn review_decision(value: i32) -> Result<ReviewDecision, HavenError> {
    required_enum(value, "decision", |value| {
        pb::ReviewDecision::try_from(value)
            .ok()
            .map(ReviewDecision::from_proto)
    })
}

/// A comment: optional when approving, required when rejecting (the requester must
/// learn why).
pub(super) fn review_comment(decision: ReviewDecision, value: &str) -> Result<String, HavenError> {
    match decision {
        ReviewDecision::Approve => optional_text("comment", value, MAX_REASON),
        ReviewDecision::Reject => required_text("comment", value, MAX_REASON),
    }
}

pub(super) fn plan_version(value: u32) -> Result<i32, HavenError> {
    i32::try_from(value)
        .ok()
        .filter(|version| *version > 0)
        .ok_or_else(|| {
            HavenError::invalid_field("plan_version", "must be a plan version (1, 2, ...)")
        })
}

/// Flags are short labels: lower case letters, digits and underscores.
pub(super) fn flags(values: Vec<String>) -> Result<Vec<String>, HavenError> {
    if values.len() > 16 {
        return Err(HavenError::invalid_field("flags", "at most 16 flags"));
    }
    let mut flags: Vec<String> = Vec::with_capacity(values.len());
    for flag in values {
        let valid = (1..=40).contains(&flag.len())
            && flag.starts_with(|character: char| character.is_ascii_lowercase())
            && flag.chars().all(|character| {
                character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
            });
        if !valid {
            return Err(HavenError::invalid_field(
                "flags",
                "each flag is 1 to 40 lower-case letters, digits or underscores, starting with a letter",
            ));
        }
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    Ok(flags)
}

/// The filter of a case list request; `include_sealed` if the caller reads sealed cases.
pub(super) fn case_filter(
    message: &pb::ListCasesRequest,
    include_sealed: bool,
) -> Result<CaseFilter, HavenError> {
    let status = optional_enum(message.status, "status", |value| {
        pb::CaseStatus::try_from(value)
            .ok()
            .map(CaseStatus::from_proto)
    })?;
    let stage = optional_enum(message.stage, "stage", |value| {
        pb::CaseStage::try_from(value)
            .ok()
            .map(CaseStage::from_proto)
    })?;
    let risk_level = optional_enum(message.risk_level, "risk_level", |value| {
        pb::RiskLevel::try_from(value)
            .ok()
            .map(RiskLevel::from_proto)
    })?;
    let caseworker = match message.caseworker.trim() {
        "" => None,
        subject => Some(subject_text("caseworker", subject)?),
    };
    let organization_id = match message.organization_id.as_str() {
        "" => None,
        id => Some(parse_id("organization_id", id)?),
    };
    Ok(CaseFilter {
        status,
        stage,
        caseworker,
        risk_level,
        overdue_follow_up: message.overdue_follow_up,
        overdue_plan_action: message.overdue_plan_action,
        organization_id,
        today: None,
        include_sealed,
    })
}

/// The scores of an assessment: at least one, each domain once, each 1 to 5.
pub(super) fn assessment_scores(
    scores: Vec<pb::DomainScore>,
) -> Result<Vec<(NeedDomain, u8)>, HavenError> {
    if scores.is_empty() {
        return Err(HavenError::invalid_field(
            "scores",
            "score at least one domain",
        ));
    }
    let mut parsed = Vec::with_capacity(scores.len());
    for score in scores {
        let domain = pb::NeedDomain::try_from(score.domain)
            .ok()
            .and_then(NeedDomain::from_proto)
            .ok_or_else(|| HavenError::invalid_field("scores.domain", "unknown domain"))?;
        if parsed.iter().any(|(seen, _)| *seen == domain) {
            return Err(HavenError::invalid_field(
                "scores.domain",
                "each domain is scored once",
            ));
        }
        let value = u8::try_from(score.score)
            .ok()
            .filter(|value| (1..=5).contains(value))
            .ok_or_else(|| {
                HavenError::invalid_field("scores.score", "must be 1 (critical) to 5 (fully met)")
            })?;
        parsed.push((domain, value));
    }
    Ok(parsed)
}

/// When an assessment was made: now if not given, and never in the future (five
/// minutes of clock skew allowed).
pub(super) fn assessed_at(
    at: Option<prost_types::Timestamp>,
) -> Result<OffsetDateTime, HavenError> {
    let now = OffsetDateTime::now_utc();
    match at {
        None => Ok(now),
        Some(at) => haven_proto::from_timestamp(&at)
            .filter(|at| *at <= now + time::Duration::minutes(5))
            .ok_or_else(|| {
                HavenError::invalid_field("assessed_at", "must be a time, not in the future")
            }),
    }
}
