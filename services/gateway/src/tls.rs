//! HTTPS for the gateway when `gateway.tls_cert_file` and `gateway.tls_key_file`
//! are set: a listener that accepts TCP connections, completes TLS handshakes
//! (ALPN `h2` and `http/1.1`) concurrently and hands finished connections to
//! `axum::serve`, which keeps its HTTP/1.1 + HTTP/2 serving and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use haven_config::GatewaySettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::rate_limit::ClientAddr;

/// Longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; past it, accepting waits.
const MAX_CONCURRENT_HANDSHAKES: usize = 512;
/// Finished handshakes waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The TLS acceptor for the configured certificate, or `None` for plain HTTP.
pub(crate) fn acceptor(settings: &GatewaySettings) -> anyhow::Result<Option<TlsAcceptor>> {
    let (cert_path, key_path) = match (&settings.tls_cert_file, &settings.tls_key_file) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            anyhow::bail!("gateway.tls_key_file must be set when gateway.tls_cert_file is set")
        }
        (None, Some(_)) => {
            anyhow::bail!("gateway.tls_cert_file must be set when gateway.tls_key_file is set")
        }
    };
    let certificates = read_certificates(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).with_context(|| {
        format!(
            "gateway.tls_key_file `{}` holds no usable PEM private key",
            key_path.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .context("gateway.tls_key_file does not match gateway.tls_cert_file")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("gateway.tls_cert_file `{}`", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "gateway.tls_cert_file `{}` holds no PEM certificate",
        path.display()
    );
    Ok(certificates)
}

/// Accepts TLS connections for `axum::serve`.
///
/// Handshakes run in their own tasks, so a slow or silent client delays nobody
/// else; each has [`HANDSHAKE_TIMEOUT`]. Accepting stops when `stop` is cancelled
/// or the listener is dropped, which closes the port.
#[derive(Debug)]
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    _stop_accepting: DropGuard,
}

impl TlsListener {
    /// Starts accepting on `listener`. Must be called inside a Tokio runtime.
    pub(crate) fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        stop: CancellationToken,
    ) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let stop = stop.child_token();
        tokio::spawn(accept_loop(listener, acceptor, sender, stop.clone()));
        Ok(Self {
            ready,
            local_addr,
            _stop_accepting: stop.drop_guard(),
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop has stopped (shutdown): no more connections, and
            // `axum::serve` stops calling this on the same signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                if !is_connection_error(&error) {
                    // e.g. out of file descriptors: wait for some to be released.
                    tracing::error!(%error, "accepting a connection failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    // Fails only once the server has stopped taking connections.
                    let _ = ready.send((tls, peer)).await;
                }
                // Client errors; the peer address is not logged (personal data).
                Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
    tracing::debug!("stopped accepting TLS connections");
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
