//! JSON bodies of the REST API and their conversions to and from the gRPC messages.
//!
//! Field names are snake_case and match the proto fields; enums use their REST
//! spelling ([`enums`]); ids are UUID strings; timestamps are RFC 3339; calendar dates
//! are `YYYY-MM-DD` strings, checked here and passed on as written. Empty proto strings
//! of optional fields become `null`.

pub(crate) mod assessment;
pub(crate) mod case;
pub(crate) mod clock;
pub(crate) mod delivery;
pub(crate) mod enums;
pub(crate) mod facility;
pub(crate) mod follow_up;
pub(crate) mod note;
pub(crate) mod organization;
pub(crate) mod person;
pub(crate) mod plan;
pub(crate) mod referral;
pub(crate) mod report;
pub(crate) mod screening;

use haven_error::HavenError;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::IntoParams;

/// Largest page a client may ask for.
pub(crate) const MAX_PAGE_SIZE: u32 = 100;
/// Longest cursor accepted; real cursors are far shorter.
const MAX_CURSOR_CHARS: usize = 512;

/// Reads a proto timestamp; `None` when it is absent or out of range.
pub(crate) fn from_timestamp(timestamp: Option<prost_types::Timestamp>) -> Option<OffsetDateTime> {
    let timestamp = timestamp?;
    let nanos = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// Writes a proto timestamp.
pub(crate) fn to_timestamp(instant: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.unix_timestamp(),
        // Always below one billion, so it fits.
        nanos: i32::try_from(instant.nanosecond()).unwrap_or_default(),
    }
}

/// An empty proto string is an unset optional field.
pub(crate) fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// Cursor pagination parameters shared by every list endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl PageQuery {
    /// Validates the parameters into the proto page request.
    pub(crate) fn into_proto(self) -> Result<haven_proto::common::v1::PageRequest, HavenError> {
        page_request(self.limit, self.cursor)
    }
}

/// Validates pagination parameters into the proto page request.
pub(crate) fn page_request(
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<haven_proto::common::v1::PageRequest, HavenError> {
    if let Some(limit) = limit
        && !(1..=MAX_PAGE_SIZE).contains(&limit)
    {
        return Err(HavenError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let cursor = cursor.unwrap_or_default();
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(HavenError::invalid_field("cursor", "is not a valid cursor"));
    }
    Ok(haven_proto::common::v1::PageRequest {
        limit: limit.unwrap_or(0),
        cursor,
    })
}

/// The `next_cursor` of a proto page response; `None` on the last page.
pub(crate) fn next_cursor(page: Option<haven_proto::common::v1::PageResponse>) -> Option<String> {
    page.and_then(|page| non_empty(page.next_cursor))
}

/// A backend answered without the message it must carry: a contract violation.
pub(crate) fn missing_in_response(what: &'static str) -> HavenError {
    HavenError::internal(format!("backend response has no {what}"))
}

/// Rejects an empty or blank required string.
pub(crate) fn require_text(field: &str, value: &str) -> Result<(), HavenError> {
    if value.trim().is_empty() {
        return Err(HavenError::invalid_field(field, "must not be empty"));
    }
    Ok(())
}

/// Rejects a value that is not a calendar date written `YYYY-MM-DD`.
pub(crate) fn require_date(field: &str, value: &str) -> Result<(), HavenError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let well_formed = value.len() == 10
        && value.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && time::Date::parse(value, &format).is_ok();
    if !well_formed {
        return Err(HavenError::invalid_field(
            field,
            "must be a date written YYYY-MM-DD",
        ));
    }
    Ok(())
}

/// An optional date: checked when given, the empty proto string when absent.
pub(crate) fn optional_date(field: &str, value: Option<String>) -> Result<String, HavenError> {
    match value {
        Some(date) => {
            require_date(field, &date)?;
            Ok(date)
        }
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_calendar_dates_written_year_month_day() {
        for good in ["2026-03-01", "2024-02-29", "1999-12-31"] {
            assert!(require_date("due_on", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2026-3-1",
            "2026-02-30",
            "2025-02-29",
            "01.03.2026",
            "2026-03-01T00:00:00Z",
            "+026-03-01",
            "2026-W09-7",
            "tomorrow",
        ] {
            let error = require_date("due_on", bad).unwrap_err();
            assert_eq!(error.violations()[0].field, "due_on", "{bad}");
        }
        assert_eq!(optional_date("ended_on", None).unwrap(), "");
        assert_eq!(
            optional_date("ended_on", Some("2026-03-01".into())).unwrap(),
            "2026-03-01"
        );
    }
}
