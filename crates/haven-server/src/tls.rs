//! TLS for gRPC between Haven processes and with ministry systems, from the
//! `grpc_tls` settings: the server side (TLS, and mutual TLS when
//! `client_ca_file` is set) and the client side (`https://` endpoints verified
//! against `ca_file`, presenting this process's certificate when asked).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use haven_config::{GrpcTlsSettings, Settings};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// Longest a TLS handshake may take, on either side. A client that never finishes
/// its handshake holds a task, not a connection slot, for at most this long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server TLS configuration, or `None` when `grpc_tls` names no certificate
/// (plaintext, for development). With `client_ca_file` set, clients must present
/// a certificate issued by that CA.
pub fn server_tls_config(tls: &GrpcTlsSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let Some(identity) = identity(tls)? else {
        anyhow::ensure!(
            tls.client_ca_file.is_none(),
            "grpc_tls.client_ca_file requires grpc_tls.cert_file and grpc_tls.key_file"
        );
        return Ok(None);
    };
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(path) = &tls.client_ca_file {
        let client_ca = read_pem("grpc_tls.client_ca_file", path)?;
        config = config
            .client_ca_root(Certificate::from_pem(client_ca))
            .client_auth_optional(false);
    }
    Ok(Some(config))
}

/// The client TLS configuration for `https://` endpoints: trust `ca_file` (or, when
/// unset, the bundled public web roots), and present `cert_file`/`key_file` when a
/// server asks for a client certificate.
pub fn client_tls_config(tls: &GrpcTlsSettings) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new().timeout(TLS_HANDSHAKE_TIMEOUT);
    config = match &tls.ca_file {
        Some(path) => {
            config.ca_certificate(Certificate::from_pem(read_pem("grpc_tls.ca_file", path)?))
        }
        None => config.with_enabled_roots(),
    };
    if let Some(identity) = identity(tls)? {
        config = config.identity(identity);
    }
    Ok(config)
}

/// An endpoint for `url` with TLS applied from `settings.grpc_tls` when the URL is
/// `https://`; `http://` stays plaintext. Callers add their own timeouts and
/// connect (lazily or not).
pub fn client_endpoint(url: &str, settings: &Settings) -> anyhow::Result<Endpoint> {
    client_endpoint_with(url, &settings.grpc_tls)
}

/// [`client_endpoint`] with the TLS settings given directly.
pub fn client_endpoint_with(url: &str, tls: &GrpcTlsSettings) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a valid gRPC endpoint URL"))?;
    let scheme = endpoint.uri().scheme_str().unwrap_or_default();
    if scheme.eq_ignore_ascii_case("http") {
        return Ok(endpoint);
    }
    anyhow::ensure!(
        scheme.eq_ignore_ascii_case("https"),
        "`{url}` must start with http:// or https://"
    );
    endpoint
        .tls_config(client_tls_config(tls)?)
        .with_context(|| format!("configuring TLS for `{url}` from grpc_tls"))
}

/// This process's certificate and key, when both are configured.
fn identity(tls: &GrpcTlsSettings) -> anyhow::Result<Option<Identity>> {
    match (&tls.cert_file, &tls.key_file) {
        (None, None) => Ok(None),
        (Some(_), None) => {
            anyhow::bail!("grpc_tls.key_file must be set when grpc_tls.cert_file is set")
        }
        (None, Some(_)) => {
            anyhow::bail!("grpc_tls.cert_file must be set when grpc_tls.key_file is set")
        }
        (Some(cert), Some(key)) => Ok(Some(Identity::from_pem(
            read_pem("grpc_tls.cert_file", cert)?,
            read_pem("grpc_tls.key_file", key)?,
        ))),
    }
}

/// Reads a PEM file named by the settings key `key`.
fn read_pem(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{key} `{}`", path.display()))?;
    anyhow::ensure!(
        bytes
            .windows(b"-----BEGIN ".len())
            .any(|window| window == b"-----BEGIN "),
        "{key} `{}` holds no PEM block",
        path.display()
    );
    Ok(bytes)
}
