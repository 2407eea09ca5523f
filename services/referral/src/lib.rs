//! The referral service: the directory of organisations that assist victims (this
//! first version), and later facilities, catchment search and referrals.

mod api;
pub mod crypto;
pub mod domain;
pub mod geo;
pub mod peers;
pub mod store;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;
use haven_proto::referral::v1::referral_service_server::ReferralServiceServer;
use haven_server::Service;
use haven_storage::{Database, MigrationSet};

pub use api::ReferralApi;

/// Name of this service in events, keys and schemas.
pub const SERVICE: &str = "referral";

/// The referral service's own tables.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};

/// Everything in the referral database, in the order it is migrated: the event outbox
/// and feed checkpoints, the audit trail, then the referral service's own tables.
const ALL_MIGRATIONS: &[MigrationSet] = &[
    haven_events::MIGRATIONS,
    haven_audit::MIGRATIONS,
    MIGRATIONS,
];

/// Opens (and migrates) the referral database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(settings, SERVICE, ALL_MIGRATIONS).await
}

/// Serves the referral service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let service = Service::open(SERVICE, &settings, ALL_MIGRATIONS).await?;
    let crypto = crypto::ReferralCrypto::load(service.keys_dir())?;
    let store = store::open(
        service.database().clone(),
        service.event_signal().clone(),
        crypto,
    );
    // Referrals written before their texts were encrypted are encrypted once.
    store
        .encrypt_legacy_texts()
        .await
        .map_err(|error| anyhow::anyhow!("encrypting earlier referral texts: {error}"))?;
    let gazetteer = match &settings.referral.gazetteer_file {
        Some(path) => geo::Gazetteer::load(path)?,
        None => geo::Gazetteer::default_settlements(),
    };
    let peers = peers::Peers::new(&settings, service.service_tokens())?;
    let api = ReferralServiceServer::new(ReferralApi::new(
        store.clone(),
        peers,
        gazetteer,
        settings.referral.clone(),
    ));
    service
        // A withdrawn data-sharing consent in intake revokes the open referrals.
        .follow("intake", &settings.intake.endpoint, store)
        .event_feed()
        .audit_trail()
        .serve(listener, api, shutdown)
        .await
}
