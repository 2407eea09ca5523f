//! `haven`: run Haven (all services or one), mint development tokens, migrate,
//! health-check.

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use haven_auth::Role;
use haven_auth::keys::{DevTokenRequest, KeyMaterial};
use haven_cli::{ServiceName, healthcheck};
use haven_config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "haven",
    version,
    about = "Haven: case management for assistance to victims of trafficking"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run all five services in this process (embedded SQLite under ./data by default).
    Up,
    /// Run one service (for containers).
    Serve {
        /// Which service.
        #[arg(value_enum)]
        service: ServiceName,
    },
    /// Print a development token signed with the generated development key.
    Token {
        /// Role(s): admin, intake_officer, case_worker, supervisor,
        /// referral_coordinator, analyst, auditor, directory_admin. Repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Organisation id (UUID). Default: the development organisation.
        #[arg(long)]
        org: Option<Uuid>,
        /// Subject (user id).
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 8 * 3600)]
        ttl: i64,
    },
    /// Apply every service's database migrations and exit.
    Migrate,
    /// Exit 0 if a service is healthy: http://host:port[/path] or grpc://host:port.
    Healthcheck {
        /// What to check.
        target: String,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The master keys that wrap every person's data key.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Reporting's projections.
    Reporting {
        #[command(subcommand)]
        command: ReportingCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ReportingCommand {
    /// Empty every projection and checkpoint (not the release ledger), so that the
    /// reporting service applies the feeds again from the start when it next runs.
    /// Stop the reporting service first.
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every service's hash chain against the head the services signed under
    /// `keys/audit-head.key`: names the first altered, deleted or reordered entry, and
    /// reports a truncated or rehashed chain and a forged head.
    Verify,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create the master keyring, the blind-index key and the audit head key in a
    /// directory (for a secret store, e.g. the Kubernetes Secret `haven-keys`).
    /// Never overwrites.
    Init {
        /// Where to write `master-keys.json`, `blind-index.key`, `audit-head.key` and
        /// `perturbation.key`.
        directory: std::path::PathBuf,
    },
    /// Add a new master key version, make it active, and re-wrap every person's,
    /// case's and referral's key under it. Running services pick it up without a
    /// restart; the command prints what is left to do, in order.
    Rotate,
    /// Remove an old master key version after re-wrapping anything still under it.
    Retire {
        /// The version to retire (not the active one).
        version: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("haven: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("haven: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Healthcheck { target } = &command {
        return healthcheck::check(target).await;
    }
    let settings = Settings::load()?;
    match command {
        Command::Up => up(settings).await,
        Command::Serve { service } => {
            let telemetry =
                haven_telemetry::init(&settings.telemetry, &format!("haven-{}", service.as_str()))?;
            let listener = haven_cli::bind(service, &settings).await?;
            let shutdown = haven_server::shutdown_on_signal();
            let served = haven_cli::serve(service, listener, settings, shutdown).await;
            telemetry.shutdown();
            served
        }
        Command::Token {
            roles,
            org,
            sub,
            ttl,
        } => {
            for role in &roles {
                anyhow::ensure!(
                    Role::parse(role).is_some_and(|role| role != Role::Service),
                    "unknown role `{role}`"
                );
            }
            let keys = KeyMaterial::load_or_create(&settings)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let organization_id = match org {
                Some(org) => org,
                None => development_organization(&settings.data_dir)?,
            };
            let request = DevTokenRequest {
                subject: sub,
                organization_id,
                roles,
                ttl_seconds: ttl,
            };
            let token = keys
                .mint_dev_token(&settings.auth, &request)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate => {
            haven_cli::migrate(&settings).await?;
            eprintln!("haven: migrations applied");
            Ok(())
        }
        Command::Healthcheck { .. } => Ok(()),
        Command::Audit {
            command: AuditCommand::Verify,
        } => haven_cli::operations::verify_audit(&settings).await,
        Command::Reporting {
            command: ReportingCommand::Rebuild,
        } => haven_cli::operations::rebuild_reporting(&settings).await,
        Command::Keys { command } => match command {
            KeysCommand::Init { directory } => haven_cli::operations::init_keys(&directory),
            KeysCommand::Rotate => haven_cli::operations::rotate_keys(&settings).await,
            KeysCommand::Retire { version } => {
                haven_cli::operations::retire_key(&settings, version).await
            }
        },
    }
}

async fn up(settings: Settings) -> anyhow::Result<()> {
    let telemetry = haven_telemetry::init(&settings.telemetry, "haven")?;
    let organization = development_organization(&settings.data_dir)?;
    let storage = match &settings.database.url {
        Some(_) => "Postgres (database.url)".to_owned(),
        None => format!("embedded SQLite under {}", settings.data_dir.display()),
    };
    let stack = haven_cli::start(settings).await?;
    let shutdown = haven_server::shutdown_on_signal();
    let url = stack.gateway_url.clone();
    let metrics_url = stack.metrics_url.clone();
    let grpc: Vec<String> = ServiceName::ALL[..4]
        .iter()
        .map(|service| format!("{} {}", service.as_str(), stack.endpoint(*service)))
        .collect();
    eprintln!(
        "\nHaven is running ({storage}).\n\
         \n  REST API   {url}/v1\
         \n  API docs   {url}/docs\
         \n  OpenAPI    {url}/v1/openapi.json\
         \n  gRPC       {}\
         \n  Metrics    {metrics_url} (Prometheus, not on the API port)\
         \n\nGet a development token (organisation {organization}):\
         \n  export TOKEN=$(cargo run -q -p haven-cli -- token --role intake_officer --role case_worker --role analyst)\
         \n  curl -H \"Authorization: Bearer $TOKEN\" {url}/v1/screenings\
         \n\nStop with Ctrl-C.\n",
        grpc.join(", ")
    );
    let stop = stack.shutdown_token();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stop.cancel();
    });
    let result = stack.wait().await;
    telemetry.shutdown();
    result
}

/// The organisation development tokens belong to by default, generated once per
/// data directory.
fn development_organization(data_dir: &Path) -> anyhow::Result<Uuid> {
    let path = data_dir.join("dev-organization-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(id) = Uuid::parse_str(text.trim())
    {
        return Ok(id);
    }
    std::fs::create_dir_all(data_dir)?;
    let id = Uuid::new_v4();
    std::fs::write(&path, id.to_string())?;
    Ok(id)
}
