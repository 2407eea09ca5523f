//! The reporting service: statistics computed only from the other services' event
//! feeds, into its own projections. It never sees personal data.

mod api;
mod counts;
mod facts;
pub mod privacy;
pub mod projections;
pub mod publication;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;
use haven_proto::reporting::v1::reporting_service_server::ReportingServiceServer;
use haven_server::Service;
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

/// Everything in the reporting database, in the order it is migrated: the event
/// outbox and feed checkpoints, then the projections.
const ALL_MIGRATIONS: &[MigrationSet] = &[haven_events::MIGRATIONS, MIGRATIONS];

/// Opens (and migrates) the reporting database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, ALL_MIGRATIONS).await
}

/// Serves the reporting service on `listener`, following the intake, case and
/// referral feeds, until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let service = Service::open(SERVICE, &settings, ALL_MIGRATIONS).await?;
    let keys = RecordKeys::load(service.keys_dir())?;
    let projections = projections::open(service.database().clone(), keys);
    // Regions in report scopes are settlements of the gazetteer intake records.
    let gazetteer = match &settings.referral.gazetteer_file {
        Some(path) => haven_geo::Gazetteer::load(path)?,
        None => haven_geo::Gazetteer::default_settlements(),
    };
    let api = ReportingServiceServer::new(ReportingApi::new(
        projections.clone(),
        &settings.reporting,
        gazetteer,
    ));
    service
        .follow("intake", &settings.intake.endpoint, projections.clone())
        .follow("case", &settings.case.endpoint, projections.clone())
        .follow("referral", &settings.referral.endpoint, projections)
        .serve(listener, api, shutdown)
        .await
}
