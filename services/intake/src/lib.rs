//! The intake service: screening of presumed victims, consent, identification
//! decisions, and opening the case once a person is identified and consents.

mod api;
pub mod assessment;
pub mod cases;
mod clock_api;
pub mod clocks;
pub mod domain;
mod indicator_api;
pub mod persons;
pub mod reach;
pub mod search_limit;
pub mod store;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;
use haven_proto::intake::v1::clock_service_server::ClockServiceServer;
use haven_proto::intake::v1::indicator_set_service_server::IndicatorSetServiceServer;
use haven_proto::intake::v1::intake_service_server::IntakeServiceServer;
use haven_server::Service;
use haven_storage::{Database, MigrationSet};

pub use api::IntakeApi;

/// Name of this service in events, keys and schemas.
pub const SERVICE: &str = "intake";

/// The intake service's own tables.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};

/// Everything in the intake database, in the order it is migrated: the event outbox
/// and feed checkpoints, the audit trail, then intake's own tables.
const ALL_MIGRATIONS: &[MigrationSet] = &[
    haven_events::MIGRATIONS,
    haven_audit::MIGRATIONS,
    MIGRATIONS,
];

/// Opens (and migrates) the intake database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, ALL_MIGRATIONS).await
}

/// Serves the intake service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let service = Service::open(SERVICE, &settings, ALL_MIGRATIONS).await?;
    let crypto = persons::PersonCrypto::load(service.keys_dir())?;
    let store = store::open(
        service.database().clone(),
        service.event_signal().clone(),
        crypto,
        &settings.case.code_prefix,
    );
    // Typed texts recorded before they were encrypted are encrypted before serving.
    store
        .encrypt_plaintext_texts()
        .await
        .map_err(|error| anyhow::anyhow!("encrypting typed texts written in the clear: {error}"))?;
    let opener = cases::CaseOpener::new(&settings, service.service_tokens())?;
    store
        .ensure_default_indicator_set()
        .await
        .map_err(|error| anyhow::anyhow!("default indicator set: {error}"))?;
    let clock_api = ClockServiceServer::new(clock_api::ClockApi::new(store.clone()));
    let indicator_api =
        IndicatorSetServiceServer::new(indicator_api::IndicatorSetApi::new(store.clone()));
    // A screening names its settlement from the gazetteer referral searches by.
    let gazetteer = match &settings.referral.gazetteer_file {
        Some(path) => haven_geo::Gazetteer::load(path)?,
        None => haven_geo::Gazetteer::default_settlements(),
    };
    let api = IntakeServiceServer::new(IntakeApi::new(
        store.clone(),
        opener.clone(),
        settings.intake.clone(),
        gazetteer,
    ));
    service
        // A case sealed in the case service seals its screenings and person here.
        .follow("case", &settings.case.endpoint, store.clone())
        // Screenings whose case could not be opened yet are retried.
        .background(move |shutdown| {
            cases::reconcile(store, opener, cases::RECONCILE_EVERY, shutdown)
        })
        .event_feed()
        .audit_trail()
        .add_service(clock_api)
        .add_service(indicator_api)
        .serve(listener, api, shutdown)
        .await
}
