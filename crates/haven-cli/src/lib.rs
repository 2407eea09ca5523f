//! The `haven` command's library: start one service or all five, in one process.
//!
//! [`start`] is what `haven up` runs and what the end-to-end tests run: it binds
//! every listener first (port 0 is fine), points each service at the others' real
//! addresses, and serves them all over real gRPC and HTTP.

pub mod healthcheck;
pub mod operations;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use haven_config::Settings;

/// One of Haven's five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceName {
    /// REST gateway.
    Gateway,
    /// Intake (gRPC).
    Intake,
    /// Case (gRPC).
    Case,
    /// Referral (gRPC).
    Referral,
    /// Reporting (gRPC).
    Reporting,
}

impl ServiceName {
    /// All five, gRPC services first.
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Intake,
        ServiceName::Case,
        ServiceName::Referral,
        ServiceName::Reporting,
        ServiceName::Gateway,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Intake => "intake",
            ServiceName::Case => "case",
            ServiceName::Referral => "referral",
            ServiceName::Reporting => "reporting",
        }
    }

    /// Opens the service's database (the SQLite file or Postgres schema of that
    /// name) and applies its migrations. The one place that knows which database
    /// belongs to which service: migration, `haven up` and `haven audit verify` all
    /// go through it.
    pub async fn connect(self, settings: &Settings) -> anyhow::Result<haven_storage::Database> {
        match self {
            ServiceName::Gateway => haven_gateway::connect(settings).await,
            ServiceName::Intake => haven_intake::connect(settings).await,
            ServiceName::Case => haven_case::connect(settings).await,
            ServiceName::Referral => haven_referral::connect(settings).await,
            ServiceName::Reporting => haven_reporting::connect(settings).await,
        }
    }

    /// The configured listen address.
    pub fn listen(self, settings: &Settings) -> SocketAddr {
        match self {
            ServiceName::Gateway => settings.gateway.listen,
            ServiceName::Intake => settings.intake.listen,
            ServiceName::Case => settings.case.listen,
            ServiceName::Referral => settings.referral.listen,
            ServiceName::Reporting => settings.reporting.listen,
        }
    }
}

/// Binds the configured address of `service`, with a message that names the key to
/// change when the port is taken.
pub async fn bind(service: ServiceName, settings: &Settings) -> anyhow::Result<TcpListener> {
    let address = service.listen(settings);
    TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!(
            "{} cannot listen on {address}: {error} (set HAVEN__{}__LISTEN)",
            service.as_str(),
            service.as_str().to_uppercase()
        )
    })
}

/// Binds the gateway's metrics listener (`gateway.metrics_listen`).
pub async fn bind_metrics(settings: &Settings) -> anyhow::Result<TcpListener> {
    let address = settings.gateway.metrics_listen;
    TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!(
            "gateway metrics cannot listen on {address}: {error} (set HAVEN__GATEWAY__METRICS_LISTEN)"
        )
    })
}

/// Serves one service on `listener` until `shutdown`; the gateway also binds its
/// metrics listener.
pub async fn serve(
    service: ServiceName,
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics_listener = match service {
        ServiceName::Gateway => Some(bind_metrics(&settings).await?),
        _ => None,
    };
    serve_bound(service, listener, metrics_listener, settings, shutdown).await
}

/// Serves one service on listeners already bound (the gateway's metrics listener
/// is required for the gateway and ignored otherwise).
async fn serve_bound(
    service: ServiceName,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match service {
        ServiceName::Gateway => {
            let metrics_listener = match metrics_listener {
                Some(bound) => bound,
                None => bind_metrics(&settings).await?,
            };
            haven_gateway::serve(listener, metrics_listener, settings, shutdown).await
        }
        ServiceName::Intake => haven_intake::serve(listener, settings, shutdown).await,
        ServiceName::Case => haven_case::serve(listener, settings, shutdown).await,
        ServiceName::Referral => haven_referral::serve(listener, settings, shutdown).await,
        ServiceName::Reporting => haven_reporting::serve(listener, settings, shutdown).await,
    }
}

/// Runs every service's migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    for service in ServiceName::ALL {
        service.connect(settings).await?.close().await;
    }
    Ok(())
}

/// All five services running in this process.
#[derive(Debug)]
pub struct Stack {
    /// The settings the services run with (listen addresses and endpoints resolved).
    pub settings: Settings,
    /// Base URL of the REST gateway, e.g. `http://127.0.0.1:8080`.
    pub gateway_url: String,
    /// URL of the gateway's Prometheus page, e.g. `http://127.0.0.1:9464/metrics`.
    pub metrics_url: String,
    shutdown: CancellationToken,
    tasks: Vec<(ServiceName, JoinHandle<anyhow::Result<()>>)>,
}

impl Stack {
    /// The gRPC endpoint of a service, e.g. `http://127.0.0.1:50052`.
    pub fn endpoint(&self, service: ServiceName) -> String {
        match service {
            ServiceName::Gateway => self.gateway_url.clone(),
            ServiceName::Intake => self.settings.intake.endpoint.clone(),
            ServiceName::Case => self.settings.case.endpoint.clone(),
            ServiceName::Referral => self.settings.referral.endpoint.clone(),
            ServiceName::Reporting => self.settings.reporting.endpoint.clone(),
        }
    }

    /// The token that stops the stack.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until a service stops (an error, or shutdown), then stops the others and
    /// returns the first error.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while !self.tasks.is_empty() {
            let handles = self.tasks.iter_mut().map(|(_, handle)| handle);
            let (result, index, _) = futures::future::select_all(handles).await;
            let (service, _) = self.tasks.remove(index);
            let outcome = result.map_err(anyhow::Error::from).and_then(|inner| inner);
            if let Err(error) = outcome {
                tracing::error!(service = service.as_str(), error = %format!("{error:#}"), "service failed");
                first_error.get_or_insert(error.context(format!("{} failed", service.as_str())));
            }
            self.shutdown.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every service gracefully and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Binds all five listeners and the gateway's metrics listener as configured (port
/// 0 picks a free port), rewrites the endpoints to the bound addresses, and starts
/// every service.
pub async fn start(mut settings: Settings) -> anyhow::Result<Stack> {
    let metrics_listener = bind_metrics(&settings).await?;
    settings.gateway.metrics_listen = metrics_listener.local_addr()?;
    let mut metrics_listener = Some(metrics_listener);
    let mut listeners = Vec::new();
    for service in ServiceName::ALL {
        let listener = bind(service, &settings).await?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        match service {
            ServiceName::Gateway => {
                settings.gateway.listen = address;
                if settings.gateway.public_url.ends_with(":8080") && address.port() != 8080 {
                    settings.gateway.public_url = url;
                }
            }
            ServiceName::Intake => {
                (settings.intake.listen, settings.intake.endpoint) = (address, url)
            }
            ServiceName::Case => (settings.case.listen, settings.case.endpoint) = (address, url),
            ServiceName::Referral => {
                (settings.referral.listen, settings.referral.endpoint) = (address, url)
            }
            ServiceName::Reporting => {
                (settings.reporting.listen, settings.reporting.endpoint) = (address, url)
            }
        }
        listeners.push((service, listener));
    }
    // Migrate once up front so services starting together do not race on it.
    migrate(&settings).await?;
    let shutdown = CancellationToken::new();
    let tasks = listeners
        .into_iter()
        .map(|(service, listener)| {
            let metrics = match service {
                ServiceName::Gateway => metrics_listener.take(),
                _ => None,
            };
            let task = tokio::spawn(serve_bound(
                service,
                listener,
                metrics,
                settings.clone(),
                shutdown.clone(),
            ));
            (service, task)
        })
        .collect();
    Ok(Stack {
        gateway_url: settings.gateway.public_url.clone(),
        metrics_url: format!("http://{}/metrics", settings.gateway.metrics_listen),
        settings,
        shutdown,
        tasks,
    })
}
