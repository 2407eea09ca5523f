//! The referral service: the directory of organisations that assist victims (this
//! first version), and later facilities, catchment search and referrals.

mod api;
pub mod domain;
pub mod store;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use haven_config::Settings;
use haven_events::{EventFeed, EventSignal};
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_proto::referral::v1::referral_service_server::ReferralServiceServer;
use haven_server::{MAX_MESSAGE_BYTES, Security, serve_grpc_with};
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
    Database::connect(settings, SERVICE, &[haven_events::MIGRATIONS, MIGRATIONS]).await
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
    let store = store::open(database.clone(), signal.clone());
    let api = ReferralServiceServer::new(ReferralApi::new(store))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let feed = EventFeedServiceServer::new(EventFeed::new(
        SERVICE,
        database.clone(),
        signal,
        shutdown.clone(),
    ));
    let routes = Routes::new(InterceptedService::new(api, security.interceptor()))
        .add_service(InterceptedService::new(feed, security.interceptor()));
    let served = serve_grpc_with(
        listener,
        routes,
        "haven.referral.v1.ReferralService",
        shutdown,
        &settings.grpc_tls,
    )
    .await;
    database.close().await;
    served
}
