//! JSON bodies of the REST API and their conversions to and from the gRPC messages.
//!
//! Field names are snake_case and match the proto fields; enums use their REST
//! spelling ([`enums`]); ids are UUID strings; timestamps are RFC 3339. Empty proto
//! strings of optional fields become `null`.

pub(crate) mod assessment;
pub(crate) mod case;
pub(crate) mod clock;
pub(crate) mod enums;
pub(crate) mod organization;
pub(crate) mod person;
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
