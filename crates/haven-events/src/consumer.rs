//! Following another service's feed.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

use haven_auth::grpc::ServiceIdentity;
use haven_auth::keys::ServiceTokens;
use haven_error::HavenError;
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

/// Follows the feed of `source` at `endpoint` (plain or TLS, as built by the caller)
/// until `shutdown`, resuming after the
/// stored checkpoint and reconnecting with backoff on any failure.
pub async fn follow(
    source: &'static str,
    endpoint: Endpoint,
    tokens: Arc<ServiceTokens>,
    sink: Arc<dyn EventSink>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = tokio::select! {
            outcome = follow_once(source, &endpoint, &tokens, sink.as_ref()) => outcome,
            () = shutdown.cancelled() => return,
        };
        match outcome {
            Ok(applied) if applied > 0 => backoff = Duration::from_millis(200),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(source, code = %error.code(), message = error.message(), "event feed interrupted, retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

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
    while let Some(messages) = batches.next().await {
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
            sink.apply_batch(&events).await?;
            applied += events.len() as u64;
        }
        if let Some(status) = interrupted {
            return Err(status.into());
        }
    }
    Ok(applied)
}
