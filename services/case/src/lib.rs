//! The case service: rehabilitation and reintegration cases.
//!
//! A case is opened by intake (service identity) once a person is identified and
//! consents to assistance; opening is idempotent on the screening. Cases are shown by
//! a pseudonymous code, never by a name.

mod api;
pub mod crypto;
pub mod domain;
pub mod store;
pub mod texts;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;
use haven_proto::case::v1::case_service_server::CaseServiceServer;
use haven_server::Service;
use haven_storage::{Database, MigrationSet};

pub use api::CaseApi;

/// Name of this service in events, keys and schemas.
pub const SERVICE: &str = "case";

/// The case service's own tables.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};

/// Everything in the case database, in the order it is migrated: the event outbox
/// and feed checkpoints, the audit trail, then the case service's own tables.
const ALL_MIGRATIONS: &[MigrationSet] = &[
    haven_events::MIGRATIONS,
    haven_audit::MIGRATIONS,
    MIGRATIONS,
];

/// Opens (and migrates) the case database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, ALL_MIGRATIONS).await
}

/// Serves the case service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let service = Service::open(SERVICE, &settings, ALL_MIGRATIONS).await?;
    let crypto = crypto::CaseCrypto::load(service.keys_dir())?;
    let store = store::open(
        service.database().clone(),
        service.event_signal().clone(),
        crypto,
        store::StoreOptions {
            code_prefix: settings.case.code_prefix.clone(),
            allow_self_approval: settings.case.allow_self_approval,
        },
    );
    // Rows written before free texts were encrypted are encrypted before serving.
    store
        .encrypt_plaintext_texts()
        .await
        .map_err(|error| anyhow::anyhow!("encrypting free texts written in the clear: {error}"))?;
    service
        // Erasing a person in intake destroys the key of their case's notes and plans.
        .follow("intake", &settings.intake.endpoint, store.clone())
        // A completed referral is recorded as a delivered service of the case.
        .follow("referral", &settings.referral.endpoint, store.clone())
        .event_feed()
        .audit_trail()
        .serve(
            listener,
            CaseServiceServer::new(CaseApi::new(store)),
            shutdown,
        )
        .await
}
