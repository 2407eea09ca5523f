//! gRPC over TLS and mutual TLS with throwaway certificates: a real server on
//! 127.0.0.1:0, real clients built with `client_endpoint_with`, and the health
//! protocol as the call.

// Test helpers fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use haven_config::{GrpcTlsSettings, Settings};
use haven_server::testing::TestPki;
use haven_server::{GrpcRoutes, client_endpoint, client_endpoint_with, serve_grpc_with};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const HEALTH_NAME: &str = "haven.test.v1.TestService";

struct TestServer {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    async fn start(tls: GrpcTlsSettings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                serve_grpc_with(listener, GrpcRoutes::new(), HEALTH_NAME, shutdown, &tls).await
            }
        });
        Self {
            address,
            shutdown,
            task,
        }
    }

    /// `https://localhost:PORT`: the name the server certificate is issued for.
    fn https_url(&self) -> String {
        format!("https://localhost:{}", self.address.port())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server did not stop in time")
            .unwrap()
            .unwrap();
    }
}

/// Connects to `url` with `tls` and asks for the health of the test service.
async fn check_health(url: &str, tls: &GrpcTlsSettings) -> Result<ServingStatus, String> {
    let call = async {
        let channel = client_endpoint_with(url, tls)
            .map_err(|error| format!("endpoint: {error:#}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|error| format!("connect: {error:?}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: HEALTH_NAME.to_owned(),
            })
            .await
            .map_err(|status| format!("call: {status:?}"))?;
        ServingStatus::try_from(response.into_inner().status)
            .map_err(|error| format!("status: {error:?}"))
    };
    tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .map_err(|_| "no answer in time".to_owned())?
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_with_a_certificate_from_the_ca() {
    let pki = TestPki::generate().unwrap();
    let server = TestServer::start(pki.server(true)).await;
    let status = check_health(&server.https_url(), &pki.client_with_certificate()).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = TestPki::generate().unwrap();
    let server = TestServer::start(pki.server(true)).await;
    let status = check_health(&server.https_url(), &pki.client_without_certificate()).await;
    assert!(status.is_err(), "{status:?}");
    // The server keeps serving clients that do present one.
    let status = check_health(&server.https_url(), &pki.client_with_certificate()).await;
    assert_eq!(status, Ok(ServingStatus::Serving));
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let pki = TestPki::generate().unwrap();
    let server = TestServer::start(pki.server(true)).await;
    let status = check_health(
        &server.https_url(),
        &pki.client_with_untrusted_certificate(),
    )
    .await;
    assert!(status.is_err(), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_plaintext_client_cannot_talk_to_a_tls_server() {
    let pki = TestPki::generate().unwrap();
    let server = TestServer::start(pki.server(false)).await;
    let plaintext = format!("http://{}", server.address);
    let status = check_health(&plaintext, &pki.client_with_certificate()).await;
    assert!(status.is_err(), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn server_only_tls_needs_no_client_certificate_but_a_trusted_server() {
    let pki = TestPki::generate().unwrap();
    let server = TestServer::start(pki.server(false)).await;
    let status = check_health(&server.https_url(), &pki.client_without_certificate()).await;
    assert_eq!(status, Ok(ServingStatus::Serving));

    // A client that does not trust the server's CA refuses it.
    let status = check_health(&server.https_url(), &pki.client_trusting_another_ca()).await;
    assert!(status.is_err(), "{status:?}");
    // And so does one left with the public web roots.
    let status = check_health(&server.https_url(), &GrpcTlsSettings::default()).await;
    assert!(status.is_err(), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn plaintext_stays_the_default() {
    let server = TestServer::start(GrpcTlsSettings::default()).await;
    let settings = Settings::default();
    let url = format!("http://{}", server.address);
    let endpoint = client_endpoint(&url, &settings).unwrap();
    let channel = endpoint.connect().await.unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: HEALTH_NAME.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
    // A TLS client to a plaintext server fails rather than falling back.
    let status = check_health(
        &format!("https://localhost:{}", server.address.port()),
        &GrpcTlsSettings {
            ca_file: Some(TestPki::generate().unwrap().ca_file()),
            ..GrpcTlsSettings::default()
        },
    )
    .await;
    assert!(status.is_err(), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn unusable_tls_files_fail_at_start_up_naming_the_key() {
    let pki = TestPki::generate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let swapped = GrpcTlsSettings {
        cert_file: Some(pki.server_key_file()),
        key_file: Some(pki.server_cert_file()),
        ..GrpcTlsSettings::default()
    };
    let error = serve_grpc_with(
        listener,
        GrpcRoutes::new(),
        HEALTH_NAME,
        CancellationToken::new(),
        &swapped,
    )
    .await
    .unwrap_err();
    assert!(format!("{error:#}").contains("grpc_tls"), "{error:#}");

    let missing = GrpcTlsSettings {
        ca_file: Some(pki.path("missing.pem")),
        ..GrpcTlsSettings::default()
    };
    let error = client_endpoint_with("https://localhost:1", &missing).unwrap_err();
    assert!(
        format!("{error:#}").contains("grpc_tls.ca_file"),
        "{error:#}"
    );
    let error = client_endpoint_with("ftp://localhost:1", &missing).unwrap_err();
    assert!(format!("{error:#}").contains("http"), "{error:#}");
}
