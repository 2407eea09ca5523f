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

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;

use haven_config::Settings;
use haven_events::{EventFeed, EventSignal, EventSink};
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_proto::intake::v1::clock_service_server::ClockServiceServer;
use haven_proto::intake::v1::indicator_set_service_server::IndicatorSetServiceServer;
use haven_proto::intake::v1::intake_service_server::IntakeServiceServer;
use haven_server::{GrpcRoutes, MAX_MESSAGE_BYTES, Readiness, Security, serve_grpc_with};
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

/// Opens (and migrates) the intake database.
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

/// Serves the intake service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let security = Security::load(&settings, SERVICE)?;
    let database = connect(&settings).await?;
    let signal = EventSignal::default();
    let crypto = persons::PersonCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    let store = store::open(
        database.clone(),
        signal.clone(),
        crypto,
        &settings.case.code_prefix,
    );
    // Typed texts recorded before they were encrypted are encrypted before serving.
    store
        .encrypt_plaintext_texts()
        .await
        .map_err(|error| anyhow::anyhow!("encrypting typed texts written in the clear: {error}"))?;
    let opener = cases::CaseOpener::new(&settings, security.service_tokens.clone())?;
    // A case sealed in the case service seals its screenings and person here.
    let case_feed = haven_server::client_endpoint(&settings.case.endpoint, &settings)
        .map_err(|error| anyhow::anyhow!("case.endpoint: {error:#}"))?;
    let sink: Arc<dyn EventSink> = store.clone();
    let follower = tokio::spawn(haven_events::follow(
        "case",
        case_feed,
        security.service_tokens.clone(),
        sink,
        shutdown.clone(),
    ));
    let reconciler = tokio::spawn(cases::reconcile(
        store.clone(),
        opener.clone(),
        cases::RECONCILE_EVERY,
        shutdown.clone(),
    ));
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
        store,
        opener,
        settings.intake.clone(),
        gazetteer,
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
        .add_service(InterceptedService::new(feed, security.interceptor()))
        .add_service(InterceptedService::new(clock_api, security.interceptor()))
        .add_service(InterceptedService::new(
            indicator_api,
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
        "haven.intake.v1.IntakeService",
        shutdown,
        &settings.grpc_tls,
    )
    .await;
    let _ = reconciler.await;
    let _ = follower.await;
    head_signer.finish().await;
    database.close().await;
    served
}
