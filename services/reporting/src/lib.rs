//! The reporting service: statistics computed only from the other services' event
//! feeds, into its own projections. It never sees personal data.

mod api;
mod counts;
mod facts;
pub mod privacy;
pub mod projections;
pub mod publication;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use haven_config::Settings;
use haven_events::EventSink;
use haven_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use haven_server::{GrpcRoutes, MAX_MESSAGE_BYTES, Readiness, Security, serve_grpc_with};
use haven_storage::{Database, MigrationSet};

pub use api::ReportingApi;
pub use counts::{PERTURBATION_KEY_FILE, RecordKeys};

/// Name of this service in keys and schemas.
pub const SERVICE: &str = "reporting";

/// The reporting service's own tables.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};

/// Opens (and migrates) the reporting database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, &[haven_events::MIGRATIONS, MIGRATIONS]).await
}

/// Serves the reporting service on `listener`, following the intake, case and
/// referral feeds, until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let security = Security::load(&settings, SERVICE)?;
    let database = connect(&settings).await?;
    let keys = RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    let projections = projections::open(database.clone(), keys);
    let feeds = [
        ("intake", settings.intake.endpoint.clone()),
        ("case", settings.case.endpoint.clone()),
        ("referral", settings.referral.endpoint.clone()),
    ];
    let mut followers = Vec::new();
    for (source, url) in feeds {
        let endpoint = haven_server::client_endpoint(&url, &settings)
            .map_err(|error| anyhow::anyhow!("{source}.endpoint: {error:#}"))?;
        let sink: Arc<dyn EventSink> = projections.clone();
        followers.push(tokio::spawn(haven_events::follow(
            source,
            endpoint,
            security.service_tokens.clone(),
            sink,
            shutdown.clone(),
        )));
    }
    // Regions in report scopes are settlements of the gazetteer intake records.
    let gazetteer = match &settings.referral.gazetteer_file {
        Some(path) => haven_geo::Gazetteer::load(path)?,
        None => haven_geo::Gazetteer::default_settlements(),
    };
    let api = ReportingServiceServer::new(ReportingApi::new(
        projections,
        &settings.reporting,
        gazetteer,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let routes = GrpcRoutes::new()
        .readiness(Readiness::database(database.clone()))
        .add_service(InterceptedService::new(api, security.interceptor()));
    let served = serve_grpc_with(
        listener,
        routes,
        "haven.reporting.v1.ReportingService",
        shutdown,
        &settings.grpc_tls,
    )
    .await;
    for follower in followers {
        let _ = follower.await;
    }
    database.close().await;
    served
}
