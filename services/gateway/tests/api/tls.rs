//! The gateway over HTTPS with a throwaway CA: HTTP/1.1 and HTTP/2 (by ALPN) to a
//! client that trusts the CA, refusal by one that does not, no plaintext on the
//! TLS port, graceful shutdown with open connections, and start-up errors.

use std::sync::Arc;
use std::time::Duration;

use haven_config::GrpcTlsSettings;
use haven_server::testing::TestPki;
use http::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tower::ServiceExt as _;

use crate::helpers::TestGateway;

/// A gateway serving HTTPS with the PKI's server certificate.
async fn https_gateway(pki: &TestPki) -> TestGateway {
    let cert = pki.server_cert_file();
    let key = pki.server_key_file();
    TestGateway::start(move |settings| {
        settings.gateway.tls_cert_file = Some(cert);
        settings.gateway.tls_key_file = Some(key);
    })
    .await
}

/// A TLS client trusting the CA in `ca_file` and offering `alpn`.
fn connector(ca_file: &std::path::Path, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

async fn connect(
    gateway: &TestGateway,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(gateway.address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Sends `GET path` over HTTP/1.1 on `stream` and reads the response head.
async fn http1_get(stream: &mut TlsStream<TcpStream>, path: &str, close: bool) -> String {
    let connection = if close { "close" } else { "keep-alive" };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: {connection}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read until the end of the head and the small JSON body of /healthz.
    while !String::from_utf8_lossy(&response).contains("\"ok\"") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("no response in time")
            .unwrap();
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn https_answers_healthz_over_http1_to_a_client_trusting_the_ca() {
    let pki = TestPki::generate().unwrap();
    let gateway = https_gateway(&pki).await;
    let mut stream = connect(&gateway, &connector(&pki.ca_file(), &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let response = http1_get(&mut stream, "/healthz", true).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"ok"}"#), "{response}");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn https_negotiates_and_serves_http2() {
    let pki = TestPki::generate().unwrap();
    let gateway = https_gateway(&pki).await;
    let stream = connect(&gateway, &connector(&pki.ca_file(), &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    // A real HTTP/2 request: a tonic channel is an HTTP/2 client over TLS.
    let url = format!("https://localhost:{}", gateway.address.port());
    let tls = GrpcTlsSettings {
        ca_file: Some(pki.ca_file()),
        ..GrpcTlsSettings::default()
    };
    let channel = haven_server::client_endpoint_with(&url, &tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = http::Request::get(format!("{url}/healthz"))
        .body(tonic::body::Body::empty())
        .unwrap();
    let response = channel.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_refuses_the_gateway() {
    let pki = TestPki::generate().unwrap();
    let gateway = https_gateway(&pki).await;
    let error = connect(&gateway, &connector(&pki.other_ca_file(), &[b"http/1.1"]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    // The gateway keeps serving trusting clients.
    let mut stream = connect(&gateway, &connector(&pki.ca_file(), &[b"http/1.1"]))
        .await
        .unwrap();
    let response = http1_get(&mut stream, "/healthz", true).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_answer() {
    let pki = TestPki::generate().unwrap();
    let gateway = https_gateway(&pki).await;
    let result = gateway
        .client
        .get(format!("http://{}/healthz", gateway.address))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    gateway.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_https_connections_and_the_port() {
    let pki = TestPki::generate().unwrap();
    let gateway = https_gateway(&pki).await;
    let address = gateway.address;
    let tls = connector(&pki.ca_file(), &[b"http/1.1"]);
    // One kept-alive connection that has served a request, one mid-handshake.
    let mut idle = connect(&gateway, &tls).await.unwrap();
    let response = http1_get(&mut idle, "/healthz", false).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let _silent = TcpStream::connect(address).await.unwrap();

    // `stop` fails the test unless `serve` returns within its time limit.
    gateway.stop().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection stayed open: {read:?}"
    );
    assert!(TcpStream::connect(address).await.is_err());
}

#[tokio::test]
async fn a_certificate_without_a_key_stops_start_up_naming_the_setting() {
    let pki = TestPki::generate().unwrap();
    let cert = pki.server_cert_file();
    let gateway = TestGateway::start(move |settings| {
        settings.gateway.tls_cert_file = Some(cert);
    })
    .await;
    let error = gateway.stop().await.unwrap_err();
    assert!(
        format!("{error:#}").contains("gateway.tls_key_file"),
        "{error:#}"
    );

    let (cert, key) = (pki.server_cert_file(), pki.server_key_file());
    let gateway = TestGateway::start(move |settings| {
        settings.gateway.tls_cert_file = Some(key);
        settings.gateway.tls_key_file = Some(cert);
    })
    .await;
    let error = gateway.stop().await.unwrap_err();
    assert!(format!("{error:#}").contains("gateway.tls_"), "{error:#}");
}
