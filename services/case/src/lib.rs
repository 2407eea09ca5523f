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

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;
use haven_events::{EventFeed, EventSignal, EventSink};
use haven_proto::case::v1::case_service_server::CaseServiceServer;
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_server::{GrpcRoutes, MAX_MESSAGE_BYTES, Readiness, Security, serve_grpc_with};
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

/// Opens (and migrates) the case database.
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

/// Serves the case service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let security = Security::load(&settings, SERVICE)?;
    let database = connect(&settings).await?;
    let signal = EventSignal::default();
    let crypto = crypto::CaseCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    let store = store::open(
        database.clone(),
        signal.clone(),
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
    // Erasing a person in intake destroys the key of their case's notes and plans.
    let intake = haven_server::client_endpoint(&settings.intake.endpoint, &settings)
        .map_err(|error| anyhow::anyhow!("intake.endpoint: {error:#}"))?;
    let sink: Arc<dyn EventSink> = store.clone();
    let follower = tokio::spawn(haven_events::follow(
        "intake",
        intake,
        security.service_tokens.clone(),
        sink.clone(),
        shutdown.clone(),
    ));
    // A completed referral is recorded as a delivered service of the case.
    let referral = haven_server::client_endpoint(&settings.referral.endpoint, &settings)
        .map_err(|error| anyhow::anyhow!("referral.endpoint: {error:#}"))?;
    let referrals = tokio::spawn(haven_events::follow(
        "referral",
        referral,
        security.service_tokens.clone(),
        sink,
        shutdown.clone(),
    ));
    let api = CaseServiceServer::new(CaseApi::new(store))
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
        .add_service(tonic::service::interceptor::InterceptedService::new(
            api,
            security.interceptor(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            feed,
            security.interceptor(),
        ));
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
        "haven.case.v1.CaseService",
        shutdown,
        &settings.grpc_tls,
    )
    .await;
    let _ = follower.await;
    let _ = referrals.await;
    head_signer.finish().await;
    database.close().await;
    served
}
