//! The `WatchEvents` server: streams a service's outbox.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use sqlx::FromRow;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use haven_auth::{Action, PrincipalKind, Role, grpc::principal};
use haven_error::HavenError;
use haven_proto::common::v1::event_feed_service_server::EventFeedService;
use haven_proto::common::v1::{Event, WatchEventsRequest, WatchEventsResponse};
use haven_storage::{Database, db_error};

use crate::fields::payload_for_person;

const BATCH: i64 = 500;
/// How often a follower looks for events committed by another replica.
const POLL: Duration = Duration::from_millis(500);

/// Wakes followers when this process commits an event.
#[derive(Debug, Clone, Default)]
pub struct EventSignal(Arc<Notify>);

impl EventSignal {
    /// Call after committing a transaction that appended events.
    pub fn notify(&self) {
        self.0.notify_waiters();
    }
}

/// Implements `haven.common.v1.EventFeedService` over a service's outbox.
#[derive(Debug, Clone)]
pub struct EventFeed {
    source: &'static str,
    database: Database,
    signal: EventSignal,
    shutdown: CancellationToken,
}

impl EventFeed {
    /// A feed of `database`'s outbox. Streams end when `shutdown` is cancelled, so
    /// graceful shutdown is not held up by followers.
    pub fn new(
        source: &'static str,
        database: Database,
        signal: EventSignal,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            source,
            database,
            signal,
            shutdown,
        }
    }
}

#[derive(Debug, FromRow)]
struct EventRow {
    sequence: i64,
    event_id: Uuid,
    event_type: String,
    aggregate_id: Uuid,
    organization_id: Uuid,
    payload: String,
    occurred_at: OffsetDateTime,
    trace_id: String,
}

const SELECT_AFTER: &str = "SELECT sequence, event_id, event_type, aggregate_id, organization_id, \
    payload, occurred_at, trace_id FROM outbox_events WHERE sequence > $1 ORDER BY sequence LIMIT $2";

/// Reads up to `limit` events after `after` from a service's outbox.
pub async fn events_after(
    database: &Database,
    source: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>, HavenError> {
    let rows: Vec<EventRow> = match database {
        Database::Sqlite(pool) => {
            sqlx::query_as(SELECT_AFTER)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_as(SELECT_AFTER)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
        }
    }
    .map_err(db_error)?;
    Ok(rows.into_iter().map(|row| to_proto(source, row)).collect())
}

fn to_proto(source: &str, row: EventRow) -> Event {
    Event {
        sequence: u64::try_from(row.sequence).unwrap_or_default(),
        event_id: row.event_id.to_string(),
        source: source.to_owned(),
        event_type: row.event_type,
        aggregate_id: row.aggregate_id.to_string(),
        organization_id: row.organization_id.to_string(),
        payload_json: row.payload,
        occurred_at: Some(haven_proto::timestamp(row.occurred_at)),
        traceparent: row.trace_id,
    }
}

/// What a person with `roles` receives of `event`: the payload fields
/// [`payload_for_person`] lets through (deny by default), and the time to the day.
fn for_person(event: Event, roles: &[Role]) -> Event {
    let payload = serde_json::from_str(&event.payload_json).unwrap_or_default();
    let payload_json = payload_for_person(&event.event_type, &payload, roles).to_string();
    let occurred_at = event.occurred_at.map(|at| prost_types::Timestamp {
        seconds: at.seconds - at.seconds.rem_euclid(SECONDS_PER_DAY),
        nanos: 0,
    });
    Event {
        payload_json,
        occurred_at,
        ..event
    }
}

const SECONDS_PER_DAY: i64 = 86_400;

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventFeedService for EventFeed {
    type WatchEventsStream = EventStream;

    #[tracing::instrument(skip_all, fields(source = self.source))]
    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::EventsWatch)?;
        let after = i64::try_from(request.get_ref().after_sequence)
            .map_err(|_| HavenError::invalid_field("after_sequence", "is too large"))?;
        // Services see every event whole; a person sees their organisation's events,
        // reduced to what people may receive of a feed.
        let person = (caller.kind == PrincipalKind::User)
            .then(|| (caller.organization_id.to_string(), caller.roles.clone()));

        let (sender, receiver) = mpsc::channel(256);
        let feed = self.clone();
        tokio::spawn(async move {
            let mut cursor = after;
            loop {
                let notified = feed.signal.0.notified();
                let batch = match events_after(&feed.database, feed.source, cursor, BATCH).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        let _ = sender.send(Err(error.into_status())).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep(POLL) => {}
                        () = feed.shutdown.cancelled() => return,
                        () = sender.closed() => return,
                    }
                    continue;
                }
                for event in batch {
                    cursor = i64::try_from(event.sequence).unwrap_or(i64::MAX);
                    let event = match &person {
                        None => event,
                        Some((organization, _)) if *organization != event.organization_id => {
                            continue;
                        }
                        Some((_, roles)) => for_person(event, roles),
                    };
                    let message = WatchEventsResponse { event: Some(event) };
                    if sender.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
