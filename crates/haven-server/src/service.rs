//! One domain service from start-up to stop, around what is its own (its store, its
//! crypto, its API): keys, its database and migrations, followers of other services'
//! event feeds, its own event feed, the audit trail's refusal recorder and head
//! signer, the port (authenticated, size-limited, with health and reflection), and
//! graceful shutdown, after which its tasks are joined and its database is closed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use haven_auth::grpc::AuthInterceptor;
use haven_auth::keys::ServiceTokens;
use haven_config::{GrpcTlsSettings, Settings};
use haven_events::{EventFeed, EventSignal, EventSink};
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_storage::{Database, MigrationSet};

use crate::message_limits::MessageLimits;
use crate::routes::RoutedService;
use crate::{GrpcRoutes, MAX_MESSAGE_BYTES, Readiness, Security, client_endpoint_with};

/// A service's own work beside its API, started when it serves: given the shutdown
/// token, it returns the spawned task.
type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>;

/// Adds one of the service's APIs, already authenticated and limited, to its port.
type AddRoute = Box<dyn FnOnce(GrpcRoutes) -> GrpcRoutes + Send>;

/// A Haven gRPC service being assembled, then served.
///
/// [`Service::open`] loads the keys and opens (and migrates) the database, which the
/// service's store is then built on; the builder methods say what else the service
/// runs; [`Service::serve`] starts it all and serves until shutdown:
///
/// ```ignore
/// let service = Service::open(SERVICE, &settings, ALL_MIGRATIONS).await?;
/// let store = store::open(service.database().clone(), service.event_signal().clone());
/// service
///     .follow("intake", &settings.intake.endpoint, store.clone())
///     .event_feed()
///     .audit_trail()
///     .serve(listener, CaseServiceServer::new(CaseApi::new(store)), shutdown)
///     .await
/// ```
///
/// Every API added is authenticated by [`Security::interceptor`] and limited to
/// [`MAX_MESSAGE_BYTES`] either way. Nothing runs before [`Service::serve`], and a
/// configuration error (an invalid feed endpoint, an unusable head key or TLS file)
/// fails it before the port answers.
pub struct Service {
    name: &'static str,
    security: Security,
    database: Database,
    event_signal: EventSignal,
    keys_dir: PathBuf,
    grpc_tls: GrpcTlsSettings,
    followers: Vec<Follower>,
    background: Vec<BackgroundTask>,
    event_feed: bool,
    audit_trail: bool,
    routes: Vec<AddRoute>,
}

/// A feed this service follows, as configured.
struct Follower {
    source: &'static str,
    endpoint: anyhow::Result<Endpoint>,
    sink: Arc<dyn EventSink>,
}

impl Service {
    /// Loads (or, in development, generates) the keys of the service called `name`
    /// (its name in events, keys and schemas), then opens its database and applies
    /// `migrations` in order.
    pub async fn open(
        name: &'static str,
        settings: &Settings,
        migrations: &[MigrationSet],
    ) -> anyhow::Result<Self> {
        let security = Security::load(settings, name)?;
        let database = Database::connect(settings, name, migrations).await?;
        Ok(Self {
            name,
            security,
            database,
            event_signal: EventSignal::default(),
            keys_dir: haven_auth::keys::keys_dir(&settings.data_dir),
            grpc_tls: settings.grpc_tls.clone(),
            followers: Vec::new(),
            background: Vec::new(),
            event_feed: false,
            audit_trail: false,
            routes: Vec::new(),
        })
    }

    /// The service's database, for its store.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// What the store raises after committing events, waking the event feed.
    pub fn event_signal(&self) -> &EventSignal {
        &self.event_signal
    }

    /// The directory of the keys: the service's data keys are loaded from it.
    pub fn keys_dir(&self) -> &Path {
        &self.keys_dir
    }

    /// This service's identity in calls to other services.
    pub fn service_tokens(&self) -> Arc<ServiceTokens> {
        self.security.service_tokens.clone()
    }

    /// Follows the event feed of the service `source` at `url`, applying its events to
    /// `sink`, from start-up to shutdown. `source` also names the settings section
    /// of the URL: an invalid one fails [`Service::serve`] with `<source>.endpoint: ...`.
    #[must_use]
    pub fn follow(mut self, source: &'static str, url: &str, sink: Arc<dyn EventSink>) -> Self {
        self.followers.push(Follower {
            source,
            endpoint: client_endpoint_with(url, &self.grpc_tls),
            sink,
        });
        self
    }

    /// Runs `task` beside the port from start-up; it gets the shutdown token, and is
    /// awaited once the port has stopped.
    #[must_use]
    pub fn background<F, Task>(mut self, task: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Task + Send + 'static,
        Task: Future<Output = ()> + Send + 'static,
    {
        self.background
            .push(Box::new(move |shutdown| tokio::spawn(task(shutdown))));
        self
    }

    /// Serves this service's event feed (`haven.common.v1.EventFeedService`) from its
    /// outbox, woken by [`Service::event_signal`]. The database needs
    /// `haven_events::MIGRATIONS`.
    #[must_use]
    pub fn event_feed(mut self) -> Self {
        self.event_feed = true;
        self
    }

    /// The service keeps an audit trail (the database needs `haven_audit::MIGRATIONS`):
    /// calls refused to an authenticated caller are recorded in it, aggregated per
    /// window, and its head is signed under a key the database does not hold.
    #[must_use]
    pub fn audit_trail(mut self) -> Self {
        self.audit_trail = true;
        self
    }

    /// Serves `api` too, on the same port, after the main API (and the event feed).
    #[must_use]
    pub fn add_service<S>(mut self, api: S) -> Self
    where
        S: MessageLimits + Send + 'static,
        InterceptedService<S, AuthInterceptor>: RoutedService,
    {
        let interceptor = self.security.interceptor();
        self.routes.push(Box::new(move |routes: GrpcRoutes| {
            routes.add_service(authenticated(api, interceptor))
        }));
        self
    }

    /// Starts the followers and background tasks, then serves `api` (whose name is
    /// the one health reports and logs give the port) with the event feed and the
    /// other APIs added on `listener` until `shutdown` is cancelled, as
    /// [`crate::serve_grpc_with`] does. Then it waits for the background tasks and
    /// followers, signs the audit trail's head a last time, and closes the database.
    ///
    /// If the port cannot be served, its tasks are stopped as well and the error
    /// returned.
    pub async fn serve<S>(
        self,
        listener: TcpListener,
        api: S,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()>
    where
        S: MessageLimits + Send + 'static,
        InterceptedService<S, AuthInterceptor>: RoutedService,
    {
        let Self {
            name,
            security,
            database,
            event_signal,
            keys_dir,
            grpc_tls,
            followers,
            background,
            event_feed,
            audit_trail,
            routes: added_routes,
        } = self;
        let followers = followers
            .into_iter()
            .map(|follower| {
                let source = follower.source;
                let endpoint = follower
                    .endpoint
                    .map_err(|error| anyhow::anyhow!("{source}.endpoint: {error:#}"))?;
                Ok((source, endpoint, follower.sink))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The service's own tasks stop with the port, also when it fails to start.
        let tasks_shutdown = shutdown.child_token();
        // Signs the audit chain's head under a key the database does not hold.
        let head_signer = if audit_trail {
            Some(haven_audit::HeadSigner::start(
                database.clone(),
                name,
                &keys_dir,
                tasks_shutdown.clone(),
            )?)
        } else {
            None
        };
        let mut tasks: Vec<JoinHandle<()>> = background
            .into_iter()
            .map(|start| start(tasks_shutdown.clone()))
            .collect();
        tasks.extend(followers.into_iter().map(|(source, endpoint, sink)| {
            tokio::spawn(haven_events::follow(
                source,
                endpoint,
                security.service_tokens.clone(),
                sink,
                tasks_shutdown.clone(),
            ))
        }));

        let mut routes = GrpcRoutes::new()
            .readiness(Readiness::database(database.clone()))
            .add_service(authenticated(api, security.interceptor()));
        if event_feed {
            let feed = EventFeed::new(name, database.clone(), event_signal, tasks_shutdown.clone());
            routes = routes.add_service(authenticated(
                EventFeedServiceServer::new(feed),
                security.interceptor(),
            ));
        }
        if audit_trail {
            // Denied and not-found calls go to the audit trail, aggregated per window.
            routes = routes.refusals(haven_audit::RefusalRecorder::start(
                database.clone(),
                name,
                tasks_shutdown.clone(),
            ));
        }
        for add_route in added_routes {
            routes = add_route(routes);
        }

        let served = crate::serve_grpc_with(
            listener,
            routes,
            <InterceptedService<S, AuthInterceptor> as tonic::server::NamedService>::NAME,
            shutdown,
            &grpc_tls,
        )
        .await;
        tasks_shutdown.cancel();
        for task in tasks {
            let _ = task.await;
        }
        if let Some(head_signer) = head_signer {
            head_signer.finish().await;
        }
        database.close().await;
        served
    }
}

/// `api` limited to [`MAX_MESSAGE_BYTES`] and authenticated by `interceptor`.
fn authenticated<S: MessageLimits>(
    api: S,
    interceptor: AuthInterceptor,
) -> InterceptedService<S, AuthInterceptor> {
    InterceptedService::new(api.limit_messages(MAX_MESSAGE_BYTES), interceptor)
}

impl fmt::Debug for Service {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Service")
            .field("name", &self.name)
            .field(
                "follows",
                &self
                    .followers
                    .iter()
                    .map(|follower| follower.source)
                    .collect::<Vec<_>>(),
            )
            .field("background_tasks", &self.background.len())
            .field("event_feed", &self.event_feed)
            .field("audit_trail", &self.audit_trail)
            .field("other_apis", &self.routes.len())
            .finish_non_exhaustive()
    }
}
