//! The gRPC face of statutory clocks.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::Action;
use haven_auth::grpc::principal;

use crate::reach::Reach;
use haven_error::{HavenError, HavenResult};
use haven_proto::common::v1::PageResponse;
use haven_proto::intake::v1 as pb;
use haven_proto::intake::v1::clock_service_server::ClockService;
use haven_storage::cursor;

use crate::clocks::ClockState;
use crate::store::{ClockFilter, ScreeningStore};

const DEFAULT_WINDOW_HOURS: u32 = 24;

/// Implements `haven.intake.v1.ClockService`.
#[derive(Debug, Clone)]
pub struct ClockApi {
    store: Arc<dyn ScreeningStore>,
}

impl ClockApi {
    /// The API over the screening store (clocks live with screenings).
    pub fn new(store: Arc<dyn ScreeningStore>) -> Self {
        Self { store }
    }
}

/// Clock cursors carry the due time and the position, the list's sort key.
fn encode_cursor(due_at: OffsetDateTime, position: i64) -> String {
    format!("{:x}.{position:x}", due_at.unix_timestamp_nanos())
}

fn decode_cursor(cursor: &str) -> HavenResult<Option<(OffsetDateTime, i64)>> {
    if cursor.is_empty() {
        return Ok(None);
    }
    let invalid = || HavenError::invalid_field("cursor", "is not a cursor this API returned");
    let (due, position) = cursor.split_once('.').ok_or_else(invalid)?;
    let due = i128::from_str_radix(due, 16).map_err(|_| invalid())?;
    let position = i64::from_str_radix(position, 16).map_err(|_| invalid())?;
    let due = OffsetDateTime::from_unix_timestamp_nanos(due).map_err(|_| invalid())?;
    Ok(Some((due, position)))
}

#[tonic::async_trait]
impl ClockService for ClockApi {
    async fn list_clocks(
        &self,
        request: Request<pb::ListClocksRequest>,
    ) -> Result<Response<pb::ListClocksResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::ClockRead)?;
        let message = request.into_inner();
        let state = match pb::ClockState::try_from(message.state) {
            Ok(pb::ClockState::Unspecified) => None,
            Ok(pb::ClockState::Open) => Some(ClockState::Open),
            Ok(pb::ClockState::DueSoon) => Some(ClockState::DueSoon),
            Ok(pb::ClockState::Overdue) => Some(ClockState::Overdue),
            Ok(pb::ClockState::Completed) => Some(ClockState::Completed),
            Err(_) => return Err(HavenError::invalid_field("state", "unknown clock state").into()),
        };
        let window_hours = match message.due_within_hours {
            0 => DEFAULT_WINDOW_HOURS,
            hours if hours <= 24 * 366 => hours,
            _ => {
                return Err(
                    HavenError::invalid_field("due_within_hours", "must be at most 8784").into(),
                );
            }
        };
        let page = message.page.unwrap_or_default();
        let limit = cursor::limit(page.limit)?;
        let after = decode_cursor(&page.cursor)?;
        let filter = ClockFilter {
            state,
            now: OffsetDateTime::now_utc(),
            window: Duration::hours(i64::from(window_hours)),
        };
        let clocks = self
            .store
            .list_clocks(Reach::of(&caller), &filter, after, limit)
            .await?;
        let next_cursor = match clocks.last() {
            Some(last) if clocks.len() == limit as usize => {
                encode_cursor(last.due_at, last.position)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListClocksResponse {
            clocks: clocks
                .iter()
                .map(|clock| clock.to_proto(filter.now, filter.window))
                .collect(),
            page: Some(PageResponse { next_cursor }),
        }))
    }

    async fn complete_clock(
        &self,
        request: Request<pb::CompleteClockRequest>,
    ) -> Result<Response<pb::CompleteClockResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::ClockComplete)?;
        let id = Uuid::parse_str(&request.get_ref().id)
            .map_err(|_| HavenError::invalid_field("id", "must be a UUID"))?;
        let clock = self
            .store
            .complete_clock(Reach::of(&caller), id, &caller.subject)
            .await?
            .ok_or_else(|| HavenError::not_found("clock"))?;
        let window = Duration::hours(i64::from(DEFAULT_WINDOW_HOURS));
        Ok(Response::new(pb::CompleteClockResponse {
            clock: Some(clock.to_proto(OffsetDateTime::now_utc(), window)),
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let due = time::OffsetDateTime::now_utc();
        let (decoded, position) = super::decode_cursor(&super::encode_cursor(due, 42))
            .unwrap()
            .unwrap();
        assert_eq!((decoded, position), (due, 42));
        assert!(super::decode_cursor("nonsense").is_err());
    }
}
