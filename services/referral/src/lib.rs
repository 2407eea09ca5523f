//! The referral service: the directory of organisations that assist victims (this
//! first version), and later facilities, catchment search and referrals.

mod api;
pub mod crypto;
pub mod domain;
pub mod geo;
pub mod peers;
pub mod store;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use haven_config::Settings;
use haven_events::{EventFeed, EventSignal, EventSink};
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_proto::referral::v1::referral_service_server::ReferralServiceServer;
use haven_server::{GrpcRoutes, MAX_MESSAGE_BYTES, Readiness, Security, serve_grpc_with};
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

/// Opens (and migrates) the referral database.
pub async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect(
        settings,
        SERVICE,
        &[
            haven_events::MIGRATIONS,
            haven_audit::MIGRATIONS,
            MIGRATIONS,
        ],
    )
    .await
}

/// Serves the referral service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let security = Security::load(&settings, SERVICE)?;
    let database = connect(&settings).await?;
    let signal = EventSignal::default();
    let crypto = crypto::ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    let store = store::open(database.clone(), signal.clone(), crypto);
    // Referrals written before their texts were encrypted are encrypted once.
    store
        .encrypt_legacy_texts()
        .await
        .map_err(|error| anyhow::anyhow!("encrypting earlier referral texts: {error}"))?;
    let gazetteer = match &settings.referral.gazetteer_file {
        Some(path) => geo::Gazetteer::load(path)?,
        None => geo::Gazetteer::default_settlements(),
    };
    let peers = peers::Peers::new(&settings, security.service_tokens.clone())?;
    // A withdrawn data-sharing consent in intake revokes the open referrals.
    let intake = haven_server::client_endpoint(&settings.intake.endpoint, &settings)
        .map_err(|error| anyhow::anyhow!("intake.endpoint: {error:#}"))?;
    let sink: Arc<dyn EventSink> = store.clone();
    let follower = tokio::spawn(haven_events::follow(
        "intake",
        intake,
        security.service_tokens.clone(),
        sink,
        shutdown.clone(),
    ));
    let api = ReferralServiceServer::new(ReferralApi::new(
        store,
        peers,
        gazetteer,
        settings.referral.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let feed = EventFeedServiceServer::new(EventFeed::new(
        SERVICE,
        database.clone(),
        signal,
        shutdown.clone(),
    ));
    // Denied and not-found calls go to the audit trail, aggregated per window.
    let refusals = haven_audit::RefusalRecorder::start(database.clone(), SERVICE, shutdown.clone());
    let routes = GrpcRoutes::new()
        .readiness(Readiness::database(database.clone()))
        .refusals(refusals)
        .add_service(InterceptedService::new(api, security.interceptor()))
        .add_service(InterceptedService::new(feed, security.interceptor()));
    // Signs the audit chain's head under a key the database does not hold.
    let head_signer = haven_audit::HeadSigner::start(
        database.clone(),
        SERVICE,
        &haven_auth::keys::keys_dir(&settings.data_dir),
        shutdown.clone(),
    )?;
    let served = serve_grpc_with(
        listener,
        routes,
        "haven.referral.v1.ReferralService",
        shutdown,
        &settings.grpc_tls,
    )
    .await;
    let _ = follower.await;
    head_signer.finish().await;
    database.close().await;
    served
}
