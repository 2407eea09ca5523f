//! Following another service's feed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use haven_auth::grpc::ServiceIdentity;
use haven_auth::keys::ServiceTokens;
use haven_error::HavenError;
use haven_error::retry::{Backoff, pause, retry};
use haven_proto::common::v1::event_feed_service_client::EventFeedServiceClient;
use haven_proto::common::v1::{Event, WatchEventsRequest};

/// Where a consumer applies events. `apply` must advance the checkpoint in the same
/// transaction as its effect and skip events at or below it (see
/// [`crate::CheckpointWrite`]), so each event takes effect exactly once even when a
/// stream is replayed after a crash.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// The last applied sequence of `source`.
    async fn checkpoint(&self, source: &str) -> Result<i64, HavenError>;
    /// Applies one event.
    async fn apply(&self, event: &Event) -> Result<(), HavenError>;
    /// Applies events of one feed, in order, that arrived together (a catch-up). A
    /// sink may apply them in one transaction; by default they are applied one by one.
    async fn apply_batch(&self, events: &[Event]) -> Result<(), HavenError> {
        for event in events {
            self.apply(event).await?;
        }
        Ok(())
    }
}

/// Most events handed to [`EventSink::apply_batch`] at once.
pub const MAX_BATCH: usize = 256;

/// Waits between attempts to follow a feed that is unreachable or broke off: 100 ms
/// at first, doubling up to 2.5 s, each stretched at random by up to as much again
/// (so never more than 5 s).
pub const RECONNECT: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_millis(2_500));

/// Follows the feed of `source` at `endpoint` (plain or TLS, as built by the caller)
/// until `shutdown`, resuming after the stored checkpoint every time it (re)connects,
/// so no event is skipped.
///
/// A transient failure (the feed or this service's database unreachable, busy or
/// too slow) is retried with [`RECONNECT`]'s backoff, which starts afresh once
/// events have been applied. Any other failure (an event the sink cannot apply, an
/// identity the feed refuses) will not pass by itself: it is logged as an error and
/// the follower starts again from its checkpoint only after the longest wait, so
/// that a fix (a deployment, a key) takes effect without a restart.
pub async fn follow(
    source: &'static str,
    endpoint: Endpoint,
    tokens: Arc<ServiceTokens>,
    sink: Arc<dyn EventSink>,
    shutdown: CancellationToken,
) {
    loop {
        let outcome = retry(
            RECONNECT,
            &shutdown,
            || follow_once(source, &endpoint, &tokens, sink.as_ref()),
            |error, wait| {
                tracing::warn!(source, code = %error.code(), message = error.message(),
                    retry_in_ms = millis(wait), "event feed interrupted, retrying");
            },
        )
        .await;
        match outcome {
            None => return,
            Some(Ok(applied)) => {
                tracing::debug!(
                    source,
                    applied,
                    "event feed ended after applying events, following again"
                );
            }
            Some(Err(error)) => {
                let wait = RECONNECT.longest_wait();
                tracing::error!(source, code = %error.code(), message = error.message(),
                    retry_in_ms = millis(wait), "event feed failed in a way a retry does not fix");
                if !pause(wait, &shutdown).await {
                    return;
                }
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Follows the feed once, from the checkpoint, until the stream ends or breaks.
/// `Ok` with the number of events applied if there were any: the caller follows
/// again at once, from the new checkpoint. The failure otherwise; a stream that
/// ends without an event applied counts as the feed being unavailable (its server
/// is shutting down).
async fn follow_once(
    source: &'static str,
    endpoint: &Endpoint,
    tokens: &Arc<ServiceTokens>,
    sink: &dyn EventSink,
) -> Result<u64, HavenError> {
    let channel = endpoint
        .clone()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| HavenError::unavailable(source, error))?;
    let mut client =
        EventFeedServiceClient::with_interceptor(channel, ServiceIdentity::new(tokens.clone()));
    let after = sink.checkpoint(source).await?;
    let after_sequence = u64::try_from(after).unwrap_or_default();
    let stream = client
        .watch_events(WatchEventsRequest { after_sequence })
        .await?
        .into_inner();
    // Events already received are applied together; a live feed gives one at a time.
    let mut batches = stream.ready_chunks(MAX_BATCH);
    let mut applied = 0;
    let failure = loop {
        let Some(messages) = batches.next().await else {
            break None;
        };
        let mut events = Vec::with_capacity(messages.len());
        let mut interrupted = None;
        for message in messages {
            match message {
                Ok(message) => events.extend(message.event),
                Err(status) => {
                    interrupted = Some(status);
                    break;
                }
            }
        }
        if !events.is_empty() {
            if let Err(error) = sink.apply_batch(&events).await {
                break Some(error);
            }
            applied += events.len() as u64;
        }
        if let Some(status) = interrupted {
            break Some(HavenError::from(status));
        }
    };
    match failure {
        None if applied == 0 => Err(HavenError::unavailable(
            source,
            std::io::Error::other("the event feed ended"),
        )),
        None => Ok(applied),
        Some(error) if applied == 0 => Err(error),
        Some(error) => {
            tracing::warn!(source, applied, code = %error.code(), message = error.message(),
                "event feed interrupted after applying events, following again");
            Ok(applied)
        }
    }
}
