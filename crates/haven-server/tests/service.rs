//! The service builder with real servers on 127.0.0.1:0 and real databases: one
//! service serves an API and its event feed, another follows that feed; health,
//! authentication and message limits hold on the port; shutdown stops both; and a
//! service that cannot start fails promptly, naming what is wrong.

// Test helpers fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_config::Settings;
use haven_error::HavenError;
use haven_events::{EventSink, NewEvent, OutboxWrite as _};
use haven_proto::common::v1::Event;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::clock_service_client::ClockServiceClient;
use haven_proto::intake::v1::clock_service_server::{ClockService, ClockServiceServer};
use haven_server::{MAX_MESSAGE_BYTES, Service};
use haven_storage::{Database, MigrationSet, WritePool as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

/// The service whose feed is followed, and the one following it.
const SOURCE: &str = "alpha";
const FOLLOWER: &str = "beta";
/// The API both serve, as health and reflection name it.
const API_NAME: &str = "haven.intake.v1.ClockService";
const SOURCE_TABLES: &[MigrationSet] = &[haven_events::MIGRATIONS, haven_audit::MIGRATIONS];
const FOLLOWER_TABLES: &[MigrationSet] = &[haven_events::MIGRATIONS];
/// Longest a start or a stop may take.
const PATIENCE: Duration = Duration::from_secs(15);

/// A clock API that lists no clocks and completes a clock whose description is as
/// many bytes long as its id says.
struct Clocks;

#[tonic::async_trait]
impl ClockService for Clocks {
    async fn list_clocks(
        &self,
        _request: tonic::Request<intake::ListClocksRequest>,
    ) -> Result<tonic::Response<intake::ListClocksResponse>, tonic::Status> {
        Ok(tonic::Response::new(intake::ListClocksResponse::default()))
    }

    async fn complete_clock(
        &self,
        request: tonic::Request<intake::CompleteClockRequest>,
    ) -> Result<tonic::Response<intake::CompleteClockResponse>, tonic::Status> {
        let length = request.get_ref().id.parse().unwrap_or(0);
        let clock = intake::StatutoryClock {
            description: "x".repeat(length),
            ..Default::default()
        };
        Ok(tonic::Response::new(intake::CompleteClockResponse {
            clock: Some(clock),
        }))
    }
}

/// Remembers the sequences of the events it is given.
#[derive(Default)]
struct Recorded(Mutex<Vec<u64>>);

impl Recorded {
    fn sequences(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventSink for Recorded {
    async fn checkpoint(&self, _source: &str) -> Result<i64, HavenError> {
        let last = self.0.lock().unwrap().last().copied().unwrap_or(0);
        Ok(i64::try_from(last).unwrap())
    }

    async fn apply(&self, event: &Event) -> Result<(), HavenError> {
        self.0.lock().unwrap().push(event.sequence);
        Ok(())
    }
}

/// A service serving in the background, and how to reach and stop it.
struct Running {
    url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(service: Service) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service.serve(
            listener,
            ClockServiceServer::new(Clocks),
            shutdown.clone(),
        ));
        Self {
            url,
            shutdown,
            task,
        }
    }

    async fn channel(&self) -> Channel {
        let endpoint = tonic::transport::Endpoint::from_shared(self.url.clone()).unwrap();
        tokio::time::timeout(PATIENCE, async {
            loop {
                match endpoint.connect().await {
                    Ok(channel) => return channel,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await
        .expect("the service never answered")
    }

    async fn health(&self, name: &str) -> ServingStatus {
        let response = HealthClient::new(self.channel().await)
            .check(HealthCheckRequest {
                service: name.to_owned(),
            })
            .await
            .unwrap();
        response.into_inner().status()
    }

    /// Cancels the service's shutdown token; it must stop cleanly in time.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the service did not stop in time")
            .unwrap()
            .unwrap();
    }
}

/// Appends one event to `service`'s outbox, as a store does in its transactions.
async fn append_event(database: &Database, service: &str) {
    let event = NewEvent {
        event_type: "screening.case_opened",
        aggregate_id: Uuid::new_v4(),
        organization_id: Uuid::new_v4(),
        payload: serde_json::json!({ "case_id": Uuid::new_v4().to_string() }),
    };
    match database {
        Database::Sqlite(pool) => {
            let mut transaction = pool.begin_write().await.unwrap();
            transaction.append_event(service, &event).await.unwrap();
            transaction.commit().await.unwrap();
        }
        Database::Postgres(pool) => {
            let mut transaction = pool.begin_write().await.unwrap();
            transaction.append_event(service, &event).await.unwrap();
            transaction.commit().await.unwrap();
        }
    }
}

fn user_token(settings: &Settings) -> String {
    let request = DevTokenRequest {
        subject: "officer".to_owned(),
        organization_id: Uuid::new_v4(),
        roles: vec!["intake_officer".to_owned()],
        ttl_seconds: 600,
    };
    KeyMaterial::load_or_create(settings)
        .unwrap()
        .mint_dev_token(&settings.auth, &request)
        .unwrap()
}

fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    haven_auth::grpc::attach_bearer(&mut request, token).unwrap();
    request
}

async fn one_service_follows_another(settings: Settings) {
    let source = Service::open(SOURCE, &settings, SOURCE_TABLES)
        .await
        .unwrap();
    let source_database = source.database().clone();
    let source_events = source.event_signal().clone();
    let source = Running::start(source.event_feed().audit_trail()).await;

    let recorded = Arc::new(Recorded::default());
    let follower = Service::open(FOLLOWER, &settings, FOLLOWER_TABLES)
        .await
        .unwrap()
        .follow(SOURCE, &source.url, recorded.clone());
    let follower = Running::start(follower).await;

    // Health: the API, the port as a whole and liveness serve.
    for name in [API_NAME, "", haven_server::LIVENESS_SERVICE] {
        assert_eq!(
            source.health(name).await,
            ServingStatus::Serving,
            "{name:?}"
        );
    }

    // The API is authenticated, and answers an authenticated caller.
    let mut clocks =
        ClockServiceClient::new(source.channel().await).max_decoding_message_size(usize::MAX);
    let refused = clocks
        .list_clocks(intake::ListClocksRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let token = user_token(&settings);
    clocks
        .list_clocks(authorized(intake::ListClocksRequest::default(), &token))
        .await
        .unwrap();
    // A response over the limit is refused by the server, even to a client that
    // would take it.
    let too_large = intake::CompleteClockRequest {
        id: (MAX_MESSAGE_BYTES + 1).to_string(),
    };
    let answer = clocks.complete_clock(authorized(too_large, &token)).await;
    let refused = answer.map(|_| "a response").map_err(|status| status.code());
    assert_eq!(refused, Err(tonic::Code::OutOfRange));

    // The follower gets what the source's store commits, woken by its signal.
    append_event(&source_database, SOURCE).await;
    source_events.notify();
    append_event(&source_database, SOURCE).await;
    source_events.notify();
    tokio::time::timeout(PATIENCE, async {
        while recorded.sequences() != [1, 2] {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the follower applied {:?}", recorded.sequences()));

    // A follower connected to the feed does not hold up either shutdown.
    source.stop().await;
    follower.stop().await;
}

haven_storage::backend_suite!(setup = settings_of; one_service_follows_another);

async fn settings_of(settings: &Settings) -> Settings {
    settings.clone()
}

#[tokio::test]
async fn an_invalid_feed_endpoint_names_its_settings_key() {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    let service = Service::open(FOLLOWER, &settings, FOLLOWER_TABLES)
        .await
        .unwrap()
        .follow("case", "not a url", Arc::new(Recorded::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = service
        .serve(
            listener,
            ClockServiceServer::new(Clocks),
            CancellationToken::new(),
        )
        .await;
    let error = format!("{:#}", served.unwrap_err());
    assert!(error.starts_with("case.endpoint: "), "{error}");
}

#[tokio::test]
async fn a_service_that_cannot_serve_stops_its_tasks_and_fails() {
    let (dir, mut settings) = haven_storage::testing::sqlite_settings();
    settings.grpc_tls.cert_file = Some(dir.path().join("missing-cert.pem"));
    settings.grpc_tls.key_file = Some(dir.path().join("missing-key.pem"));
    let (stopped, stopped_seen) = tokio::sync::oneshot::channel::<()>();
    let service = Service::open(FOLLOWER, &settings, FOLLOWER_TABLES)
        .await
        .unwrap()
        // A feed that never answers: its follower retries until told to stop.
        .follow("alpha", "http://127.0.0.1:9", Arc::new(Recorded::default()))
        .background(|shutdown| async move {
            shutdown.cancelled().await;
            let _ = stopped.send(());
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Nobody cancels this token: the service must stop its tasks itself.
    let shutdown = CancellationToken::new();
    let served = tokio::time::timeout(
        PATIENCE,
        service.serve(listener, ClockServiceServer::new(Clocks), shutdown),
    )
    .await
    .expect("a service that cannot serve must not wait for a shutdown");
    let error = format!("{:#}", served.unwrap_err());
    assert!(error.contains("grpc_tls.cert_file"), "{error}");
    stopped_seen.await.expect("the background task was stopped");
}
