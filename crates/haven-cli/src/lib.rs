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

/// Serves one service on `listener` until `shutdown`.
pub async fn serve(
    service: ServiceName,
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match service {
        ServiceName::Gateway => haven_gateway::serve(listener, settings, shutdown).await,
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

/// Binds all five listeners as configured (port 0 picks a free port), rewrites the
/// endpoints to the bound addresses, and starts every service.
pub async fn start(mut settings: Settings) -> anyhow::Result<Stack> {
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
            let task = tokio::spawn(serve(service, listener, settings.clone(), shutdown.clone()));
            (service, task)
        })
        .collect();
    Ok(Stack {
        gateway_url: settings.gateway.public_url.clone(),
        settings,
        shutdown,
        tasks,
    })
}
