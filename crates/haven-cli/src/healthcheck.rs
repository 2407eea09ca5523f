//! `haven healthcheck`: for container health checks, where the image has no curl.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Checks `target`: `http://host:port[/path]` must answer 200 (default path
/// `/healthz`); `grpc://host:port` (plaintext) or `grpcs://host:port` (TLS, trusting
/// `grpc_tls.ca_file` and presenting the configured client certificate) must report
/// SERVING on the gRPC health protocol.
pub async fn check(target: &str) -> anyhow::Result<()> {
    if let Some(rest) = target.strip_prefix("http://") {
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/healthz"),
        };
        return tokio::time::timeout(TIMEOUT, http_ok(authority, path))
            .await
            .map_err(|_| anyhow::anyhow!("{target}: no answer within {TIMEOUT:?}"))?;
    }
    if let Some(authority) = target.strip_prefix("grpcs://") {
        let settings = haven_config::Settings::load()?;
        let endpoint = haven_server::client_endpoint(&format!("https://{authority}"), &settings)?;
        return tokio::time::timeout(TIMEOUT, grpc_serving(endpoint, target))
            .await
            .map_err(|_| anyhow::anyhow!("{target}: no answer within {TIMEOUT:?}"))?;
    }
    if let Some(authority) = target.strip_prefix("grpc://") {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))?;
        return tokio::time::timeout(TIMEOUT, grpc_serving(endpoint, target))
            .await
            .map_err(|_| anyhow::anyhow!("{target}: no answer within {TIMEOUT:?}"))?;
    }
    anyhow::bail!(
        "{target}: expected http://host:port[/path], grpc://host:port or grpcs://host:port"
    )
}

async fn http_ok(authority: &str, path: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = vec![0u8; 64];
    let read = stream.read(&mut head).await?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    anyhow::ensure!(
        status == "200",
        "http://{authority}{path} answered {status}"
    );
    Ok(())
}

async fn grpc_serving(endpoint: tonic::transport::Endpoint, target: &str) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| anyhow::anyhow!("{target}: {error}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    anyhow::ensure!(
        response.status == ServingStatus::Serving as i32,
        "{target} is not serving"
    );
    Ok(())
}
