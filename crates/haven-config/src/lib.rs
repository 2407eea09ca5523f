//! Typed settings for every Haven binary.
//!
//! Layers, later wins: built-in defaults → an optional TOML file (`haven.toml` in
//! the working directory, or the file named by `HAVEN_CONFIG`) → environment
//! variables `HAVEN__SECTION__KEY` (e.g. `HAVEN__GATEWAY__LISTEN=0.0.0.0:8080`).
//! Secrets are wrapped in [`Secret`] so they never appear in `Debug` output or logs.
//! [`Settings::load`] validates after loading and names the offending key.

mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// Environment variable that names a TOML settings file.
pub const CONFIG_FILE_ENV: &str = "HAVEN_CONFIG";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or variable could not be read or parsed into the expected type.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but is not acceptable.
    #[error("configuration key `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `gateway.body_limit_bytes`.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
}

/// All settings. Each binary reads the sections it needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where embedded databases and generated development keys live.
    pub data_dir: PathBuf,
    /// Database backend.
    pub database: DatabaseSettings,
    /// Token validation and development keys.
    pub auth: AuthSettings,
    /// Logs, traces, metrics.
    pub telemetry: TelemetrySettings,
    /// The REST gateway.
    pub gateway: GatewaySettings,
    /// The intake service.
    pub intake: ServiceSettings,
    /// The case service.
    pub case: CaseSettings,
    /// The referral service.
    pub referral: ServiceSettings,
    /// The reporting service.
    pub reporting: ServiceSettings,
}

/// Which database to use.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://...` for Postgres (one schema per service). Unset: embedded SQLite,
    /// one file per service under `data_dir`.
    pub url: Option<Secret<String>>,
    /// Connections per service pool.
    pub max_connections: u32,
    /// Seconds to wait for a connection before failing a request.
    pub acquire_timeout_seconds: u64,
}

/// How tokens are validated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim of tokens from users (via the gateway or gRPC clients).
    pub audience: String,
    /// `aud` of service-to-service tokens. The gateway never accepts it.
    pub service_audience: String,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: u64,
    /// PEM public key (RSA, EC P-256 or Ed25519) that verifies user tokens in
    /// production. Unset: a development HS256 key generated under `data_dir/keys`.
    pub public_key_file: Option<PathBuf>,
    /// Algorithm of `public_key_file`: `RS256`, `ES256` or `EdDSA`.
    pub public_key_algorithm: String,
    /// Shared secret for service-to-service tokens. Unset: generated under
    /// `data_dir/keys` (fine for one host; set it explicitly for several).
    pub service_secret: Option<Secret<String>>,
    /// Lifetime of service-to-service tokens, in seconds.
    pub service_token_ttl_seconds: u64,
}

/// Logs, traces, metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directive, e.g. `info` or `haven_case=debug,info`.
    pub log_filter: String,
    /// `json` (default) or `pretty`.
    pub log_format: String,
    /// OTLP/gRPC endpoint, e.g. `http://otel-collector:4317`. Unset: no export.
    pub otlp_endpoint: Option<String>,
}

/// The REST gateway.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Base URL clients use, printed by `haven up` and used in the docs page.
    pub public_url: String,
    /// Origins allowed by CORS. Empty: no cross-origin access.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Time budget of one request, propagated as the gRPC deadline.
    pub request_timeout_ms: u64,
}

/// Where a gRPC service listens and how others reach it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL other services use to reach it, e.g. `http://case:50052`.
    pub endpoint: String,
}

/// The case service: where it listens and case-specific settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL other services use to reach it.
    pub endpoint: String,
    /// Prefix of pseudonymous case codes (`HV` → `HV-2026-000001`).
    pub code_prefix: String,
}

impl CaseSettings {
    /// The address part, as for any service.
    pub fn service(&self) -> ServiceSettings {
        ServiceSettings {
            listen: self.listen,
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let service = |port: u16| ServiceSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        Self {
            data_dir: PathBuf::from("data"),
            database: DatabaseSettings {
                url: None,
                max_connections: 8,
                acquire_timeout_seconds: 5,
            },
            auth: AuthSettings {
                issuer: "haven".to_owned(),
                audience: "haven-api".to_owned(),
                service_audience: "haven-internal".to_owned(),
                leeway_seconds: 30,
                public_key_file: None,
                public_key_algorithm: "RS256".to_owned(),
                service_secret: None,
                service_token_ttl_seconds: 300,
            },
            telemetry: TelemetrySettings {
                log_filter: "info".to_owned(),
                log_format: "json".to_owned(),
                otlp_endpoint: None,
            },
            gateway: GatewaySettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                public_url: "http://127.0.0.1:8080".to_owned(),
                cors_allowed_origins: Vec::new(),
                body_limit_bytes: 1024 * 1024,
                request_timeout_ms: 10_000,
            },
            intake: service(50051),
            case: CaseSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
                endpoint: "http://127.0.0.1:50052".to_owned(),
                code_prefix: "HV".to_owned(),
            },
            referral: service(50053),
            reporting: service(50054),
        }
    }
}

impl Settings {
    /// Loads defaults, then `HAVEN_CONFIG` or `./haven.toml` if present, then the
    /// process environment, and validates the result.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os(CONFIG_FILE_ENV)
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("haven.toml")).filter(|path| path.exists()));
        Self::load_from(file.as_deref(), std::env::vars())
    }

    /// Loads from an explicit file and set of variables (tests use this).
    pub fn load_from(
        file: Option<&Path>,
        variables: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults = config::Config::try_from(&Settings::default())?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let environment: config::Map<String, String> = variables
            .into_iter()
            .filter(|(name, _)| name.starts_with("HAVEN__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("HAVEN")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("gateway.cors_allowed_origins")
                .try_parsing(true)
                .source(Some(environment)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database.url {
            let url = url.expose();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(invalid(
                    "database.url",
                    "must be a postgres:// URL, or unset for embedded SQLite",
                ));
            }
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.auth.issuer.is_empty() {
            return Err(invalid("auth.issuer", "must not be empty"));
        }
        if self.auth.audience.is_empty() || self.auth.audience == self.auth.service_audience {
            return Err(invalid(
                "auth.audience",
                "must be set and differ from auth.service_audience",
            ));
        }
        if self.auth.leeway_seconds > 300 {
            return Err(invalid("auth.leeway_seconds", "must be at most 300"));
        }
        if !matches!(
            self.auth.public_key_algorithm.as_str(),
            "RS256" | "ES256" | "EdDSA"
        ) {
            return Err(invalid(
                "auth.public_key_algorithm",
                "must be one of RS256, ES256, EdDSA",
            ));
        }
        if let Some(secret) = &self.auth.service_secret
            && secret.expose().len() < 32
        {
            return Err(invalid(
                "auth.service_secret",
                "must be at least 32 characters",
            ));
        }
        if !matches!(self.telemetry.log_format.as_str(), "json" | "pretty") {
            return Err(invalid(
                "telemetry.log_format",
                "must be `json` or `pretty`",
            ));
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            check_url("telemetry.otlp_endpoint", endpoint)?;
        }
        if self.gateway.body_limit_bytes == 0 {
            return Err(invalid("gateway.body_limit_bytes", "must be at least 1"));
        }
        if self.gateway.request_timeout_ms == 0 {
            return Err(invalid("gateway.request_timeout_ms", "must be at least 1"));
        }
        for origin in &self.gateway.cors_allowed_origins {
            if origin == "*" {
                return Err(invalid(
                    "gateway.cors_allowed_origins",
                    "`*` is not allowed: list the origins of your front ends",
                ));
            }
            check_url("gateway.cors_allowed_origins", origin)?;
        }
        check_url("gateway.public_url", &self.gateway.public_url)?;
        check_url("intake.endpoint", &self.intake.endpoint)?;
        check_url("case.endpoint", &self.case.endpoint)?;
        check_url("referral.endpoint", &self.referral.endpoint)?;
        check_url("reporting.endpoint", &self.reporting.endpoint)?;
        if self.case.code_prefix.is_empty()
            || !self
                .case
                .code_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid("case.code_prefix", "must be letters and digits"));
        }
        Ok(())
    }
}

fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn check_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(invalid(key, "must be an http:// or https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_use_embedded_sqlite() {
        let settings = Settings::load_from(None, vars(&[])).unwrap();
        assert!(settings.database.url.is_none());
        assert_eq!(settings.gateway.listen.port(), 8080);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haven.toml");
        std::fs::write(
            &file,
            "[gateway]\nlisten = \"0.0.0.0:9000\"\nbody_limit_bytes = 2048\n",
        )
        .unwrap();
        let settings = Settings::load_from(
            Some(&file),
            vars(&[
                ("HAVEN__GATEWAY__LISTEN", "0.0.0.0:9100"),
                (
                    "HAVEN__GATEWAY__CORS_ALLOWED_ORIGINS",
                    "https://a.example,https://b.example",
                ),
                ("HAVEN__DATABASE__URL", "postgres://haven:pw@db/haven"),
                ("HAVEN__CASE__CODE_PREFIX", "AZ"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.gateway.listen.port(), 9100);
        assert_eq!(settings.gateway.body_limit_bytes, 2048);
        assert_eq!(settings.gateway.cors_allowed_origins.len(), 2);
        assert_eq!(settings.case.code_prefix, "AZ");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = Settings::load_from(None, vars(&[("HAVEN__GATEWAY__LISTEN", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("gateway.listen"), "{error}");

        let error = Settings::load_from(None, vars(&[("HAVEN__DATABASE__URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("database.url"), "{error}");

        let error =
            Settings::load_from(None, vars(&[("HAVEN__GATEWAY__CORS_ALLOWED_ORIGINS", "*")]))
                .unwrap_err()
                .to_string();
        assert!(error.contains("gateway.cors_allowed_origins"), "{error}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haven.toml");
        std::fs::write(&file, "[gateway]\nlisten_adress = \"0.0.0.0:9000\"\n").unwrap();
        let error = Settings::load_from(Some(&file), vars(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen_adress"), "{error}");
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings::load_from(
            None,
            vars(&[(
                "HAVEN__DATABASE__URL",
                "postgres://haven:hunter2hunter2@db/haven",
            )]),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
