//! Following a feed: a follower started before its feed is up catches up from its
//! checkpoint and follows again from the new one when the stream ends, applying
//! every event once; a failure a retry cannot fix is not retried at once, a
//! transient one is; shutdown ends a waiting follower at once. A scripted feed on
//! 127.0.0.1 and an in-memory sink.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status};

use haven_auth::keys::{KeyMaterial, ServiceTokens};
use haven_error::{ErrorCode, HavenError};
use haven_events::{EventSink, follow};
use haven_proto::common::v1::event_feed_service_server::{
    EventFeedService, EventFeedServiceServer,
};
use haven_proto::common::v1::{Event, WatchEventsRequest, WatchEventsResponse};

const SOURCE: &str = "intake";

/// Streams its events after the requested sequence, then ends the stream (as a
/// feed whose server shuts down does), and records every `after_sequence` asked.
#[derive(Clone)]
struct ScriptedFeed {
    events: Arc<Vec<Event>>,
    requests: Arc<Mutex<Vec<u64>>>,
}

impl ScriptedFeed {
    fn with_sequences(last: u64) -> Self {
        let events = (1..=last)
            .map(|sequence| Event {
                sequence,
                source: SOURCE.to_owned(),
                event_type: "screening_recorded".to_owned(),
                ..Event::default()
            })
            .collect();
        Self {
            events: Arc::new(events),
            requests: Arc::default(),
        }
    }

    fn requests(&self) -> Vec<u64> {
        self.requests.lock().unwrap().clone()
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventFeedService for ScriptedFeed {
    type WatchEventsStream = EventStream;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let after = request.get_ref().after_sequence;
        self.requests.lock().unwrap().push(after);
        let messages: Vec<_> = self
            .events
            .iter()
            .filter(|event| event.sequence > after)
            .map(|event| {
                Ok(WatchEventsResponse {
                    event: Some(event.clone()),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }
}

/// Applies events at most once each, advancing its checkpoint; or refuses every
/// event with `refusal`.
struct MemorySink {
    checkpoint: Mutex<i64>,
    applied: Mutex<Vec<u64>>,
    attempts: AtomicU32,
    refusal: Option<ErrorCode>,
}

impl MemorySink {
    fn at(checkpoint: i64) -> Self {
        Self {
            checkpoint: Mutex::new(checkpoint),
            applied: Mutex::default(),
            attempts: AtomicU32::new(0),
            refusal: None,
        }
    }

    fn refusing(code: ErrorCode) -> Self {
        Self {
            refusal: Some(code),
            ..Self::at(0)
        }
    }

    fn applied(&self) -> Vec<u64> {
        self.applied.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventSink for MemorySink {
    async fn checkpoint(&self, source: &str) -> Result<i64, HavenError> {
        assert_eq!(source, SOURCE);
        Ok(*self.checkpoint.lock().unwrap())
    }

    async fn apply(&self, event: &Event) -> Result<(), HavenError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(code) = self.refusal {
            return Err(HavenError::new(code, "cannot apply"));
        }
        let sequence = i64::try_from(event.sequence).unwrap();
        let mut checkpoint = self.checkpoint.lock().unwrap();
        if sequence > *checkpoint {
            *checkpoint = sequence;
            self.applied.lock().unwrap().push(event.sequence);
        }
        Ok(())
    }
}

fn tokens() -> (Arc<ServiceTokens>, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = haven_config::Settings {
        data_dir: data_dir.path().to_owned(),
        ..haven_config::Settings::default()
    };
    let keys = KeyMaterial::load_or_create(&settings).unwrap();
    let tokens = ServiceTokens::new(&settings.auth, &keys, "reporting");
    (Arc::new(tokens), data_dir)
}

fn endpoint(address: SocketAddr) -> Endpoint {
    Endpoint::from_shared(format!("http://{address}")).unwrap()
}

/// An address nothing listens on (yet).
async fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn serve(listener: TcpListener, feed: ScriptedFeed, shutdown: CancellationToken) {
    tokio::spawn(
        Server::builder()
            .add_service(EventFeedServiceServer::new(feed))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            ),
    );
}

fn start_follower(
    address: SocketAddr,
    tokens: Arc<ServiceTokens>,
    sink: Arc<MemorySink>,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(follow(
        SOURCE,
        endpoint(address),
        tokens,
        sink,
        shutdown.clone(),
    ))
}

async fn stops_promptly(follower: JoinHandle<()>, shutdown: &CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), follower)
        .await
        .expect("the follower did not stop within a second of shutdown")
        .unwrap();
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_follower_waits_for_its_feed_then_applies_every_event_after_its_checkpoint_once() {
    let (tokens, _keys) = tokens();
    let address = free_address().await;
    let sink = Arc::new(MemorySink::at(2));
    let shutdown = CancellationToken::new();
    let follower = start_follower(address, tokens, sink.clone(), &shutdown);

    // The feed comes up while the follower retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let feed = ScriptedFeed::with_sequences(5);
    serve(
        TcpListener::bind(address).await.unwrap(),
        feed.clone(),
        shutdown.clone(),
    );

    eventually("the follower did not catch up", || {
        sink.applied() == [3, 4, 5]
    })
    .await;
    // When the stream ends, the follower asks again from its new checkpoint.
    eventually("the follower did not follow again", || {
        feed.requests().len() >= 2
    })
    .await;
    let requests = feed.requests();
    assert_eq!(requests[0], 2, "{requests:?}");
    assert!(
        requests[1..].iter().all(|after| *after == 5),
        "{requests:?}"
    );
    assert_eq!(sink.applied(), [3, 4, 5]);
    stops_promptly(follower, &shutdown).await;
}

#[tokio::test]
async fn shutdown_ends_a_follower_waiting_for_its_feed() {
    let (tokens, _keys) = tokens();
    let sink = Arc::new(MemorySink::at(0));
    let shutdown = CancellationToken::new();
    let follower = start_follower(free_address().await, tokens, sink, &shutdown);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stops_promptly(follower, &shutdown).await;
}

#[tokio::test]
async fn only_a_transient_failure_is_retried_at_once() {
    let (tokens, _keys) = tokens();
    let address = free_address().await;
    let shutdown = CancellationToken::new();
    serve(
        TcpListener::bind(address).await.unwrap(),
        ScriptedFeed::with_sequences(3),
        shutdown.clone(),
    );
    let attempts = |code| {
        let tokens = tokens.clone();
        let shutdown = shutdown.child_token();
        async move {
            let sink = Arc::new(MemorySink::refusing(code));
            let follower = start_follower(address, tokens, sink.clone(), &shutdown);
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            stops_promptly(follower, &shutdown).await;
            assert!(sink.applied().is_empty());
            sink.attempts.load(Ordering::SeqCst)
        }
    };
    // Waits of 0.1 to 0.2 s, then 0.2 to 0.4 s, then 0.4 to 0.8 s.
    let transient = attempts(ErrorCode::Unavailable).await;
    assert!(transient >= 3, "{transient} attempts");
    // The next attempt comes after the longest wait, 5 s.
    let lasting = attempts(ErrorCode::Internal).await;
    assert_eq!(lasting, 1);
    shutdown.cancel();
}
