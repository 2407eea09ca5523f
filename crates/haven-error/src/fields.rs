//! Checks of request fields that every service's API shares. Each fails with the field
//! named: a `BadRequest` detail over gRPC, an `errors` entry of problem+json over REST.

use time::Date;
use uuid::Uuid;

use crate::{ErrorCode, HavenError};

/// A UUID (surrounding spaces ignored).
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, HavenError> {
    Uuid::parse_str(value.trim()).map_err(|_| HavenError::invalid_field(field, "must be a UUID"))
}

/// The version the caller read, required for every change (REST `If-Match`): without
/// it the answer is 428 Precondition Required.
pub fn expected_version(value: u64) -> Result<i64, HavenError> {
    if value == 0 {
        return Err(HavenError::new(
            ErrorCode::PreconditionRequired,
            "expected_version (If-Match) is required to change this",
        ));
    }
    i64::try_from(value).map_err(|_| HavenError::invalid_field("expected_version", "is too large"))
}

/// A calendar date, `YYYY-MM-DD`, between the years 1900 and 2200.
pub fn date(field: &str, value: &str) -> Result<Date, HavenError> {
    Date::parse(
        value.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
    .filter(|date| (1900..=2200).contains(&date.year()))
    .ok_or_else(|| HavenError::invalid_field(field, "must be a date, YYYY-MM-DD"))
}

/// A date that may be left empty.
pub fn optional_date(field: &str, value: &str) -> Result<Option<Date>, HavenError> {
    match value.trim() {
        "" => Ok(None),
        text => date(field, text).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: &HavenError) -> Option<String> {
        error
            .violations()
            .first()
            .map(|violation| violation.field.clone())
    }

    #[test]
    fn ids_dates_and_versions_name_the_field_they_refuse() {
        let id = Uuid::new_v4();
        assert_eq!(parse_id("case_id", &format!(" {id} ")).unwrap(), id);
        assert_eq!(
            field_of(&parse_id("case_id", "42").unwrap_err()).as_deref(),
            Some("case_id")
        );
        assert_eq!(
            date("due_on", "2026-02-28").unwrap(),
            time::macros::date!(2026 - 02 - 28)
        );
        for bad in ["2026-02-30", "28.02.2026", "0001-01-01", "9999-01-01"] {
            assert_eq!(
                field_of(&date("due_on", bad).unwrap_err()).as_deref(),
                Some("due_on"),
                "{bad}"
            );
        }
        assert_eq!(optional_date("due_on", "  ").unwrap(), None);
        assert_eq!(expected_version(3).unwrap(), 3);
        assert_eq!(
            expected_version(0).unwrap_err().code(),
            ErrorCode::PreconditionRequired
        );
        assert_eq!(
            field_of(&expected_version(u64::MAX).unwrap_err()).as_deref(),
            Some("expected_version")
        );
    }
}
