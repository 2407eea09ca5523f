//! Typed settings for every Haven binary.
//!
//! Layers, later wins: built-in defaults → an optional TOML file (`haven.toml` in
//! the working directory, or the file named by `HAVEN_CONFIG`) → environment
//! variables `HAVEN__SECTION__KEY` (e.g. `HAVEN__GATEWAY__LISTEN=0.0.0.0:8080`).
//! Secrets are wrapped in [`Secret`] so they never appear in `Debug` output or logs.
//! [`Settings::load`] validates after loading and names the offending key.
//!
//! TLS is off by default (development). `gateway.tls_cert_file`/`tls_key_file` turn
//! on HTTPS at the gateway; the `grpc_tls` section (e.g.
//! `HAVEN__GRPC_TLS__CERT_FILE`) turns on TLS, and with `client_ca_file` mutual TLS,
//! for gRPC. Files named there are checked at start-up.

mod secret;

use std::collections::BTreeMap;
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
    pub intake: IntakeSettings,
    /// The case service.
    pub case: CaseSettings,
    /// The referral service.
    pub referral: ReferralSettings,
    /// The reporting service.
    pub reporting: ReportingSettings,
    /// TLS of the gRPC listeners and of the gRPC clients between Haven processes.
    /// Unset: plaintext (development).
    #[serde(default)]
    pub grpc_tls: GrpcTlsSettings,
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
    /// Milliseconds a statement may wait for a lock (a row, the audit chain, the
    /// outbox, SQLite's writer) before the request fails as unavailable (`503`, to be
    /// retried). Below `gateway.request_timeout_ms`, so that a request stuck behind a
    /// lock answers before the gateway gives up on it.
    #[serde(default = "default_lock_timeout_ms")]
    pub lock_timeout_ms: u64,
}

fn default_lock_timeout_ms() -> u64 {
    5_000
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
    /// `kid` that user tokens verified by `public_key_file` must carry. Unset: the
    /// `kid` header is not checked (there is only one key).
    #[serde(default)]
    pub public_key_id: Option<String>,
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
    /// Address of the Prometheus `/metrics` listener (plain HTTP), separate from the
    /// public API: per-route counts say what an organisation is doing. Loopback by
    /// default; bind it to an address only the scraper reaches.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Base URL clients use, printed by `haven up` and used in the docs page.
    pub public_url: String,
    /// Origins allowed by CORS. Empty: no cross-origin access.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Time budget of one request, propagated as the gRPC deadline.
    pub request_timeout_ms: u64,
    /// PEM certificate chain served over HTTPS. Set together with `tls_key_file`;
    /// both unset: plain HTTP (development, or TLS ended by a proxy in front).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Requests one caller (user of an organisation, or client IP when
    /// unauthenticated) may make per minute, sustained.
    pub rate_limit_per_minute: u32,
    /// Requests one caller may make in a burst above the sustained rate.
    pub rate_limit_burst: u32,
}

/// TLS between Haven processes over gRPC.
///
/// `cert_file`/`key_file` are this process's identity: served by its gRPC listener,
/// and presented as a client certificate when a server it calls asks for one (so
/// issue them for both server and client authentication). With `client_ca_file`
/// set, gRPC listeners refuse clients without a certificate signed by that CA
/// (mutual TLS, e.g. for ministry systems). `ca_file` is what clients verify
/// `https://` endpoints against.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsSettings {
    /// PEM certificate chain of this process.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// PEM CA certificate(s) that client certificates must chain to. Set: gRPC
    /// listeners require a client certificate.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// PEM CA certificate(s) that clients trust for `https://` endpoints. Unset: the
    /// bundled public web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl GrpcTlsSettings {
    /// Whether gRPC listeners serve TLS.
    pub fn serves_tls(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// The referral service: where it listens, its catchment radius, its gazetteer and
/// what a referral discloses per service type.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL other services use to reach it.
    pub endpoint: String,
    /// Catchment radius of a search and of the coverage report, in km.
    #[serde(default = "default_radius_km")]
    pub default_radius_km: f64,
    /// A CSV gazetteer (`name_az,name_en,lat,lon`) replacing the shipped settlements.
    #[serde(default)]
    pub gazetteer_file: Option<PathBuf>,
    /// Fields of the person a referral discloses, per service type (`shelter`,
    /// `medical`, ...); service types not listed disclose `default_disclosure`.
    #[serde(default = "default_disclosure_by_type")]
    pub disclosure: BTreeMap<String, Vec<String>>,
    /// Fields disclosed for service types not in `disclosure`.
    #[serde(default = "default_disclosure")]
    pub default_disclosure: Vec<String>,
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn default_radius_km() -> f64 {
    150.0
}

fn default_disclosure() -> Vec<String> {
    ["given_name", "gender", "age", "language"]
        .map(str::to_owned)
        .to_vec()
}

fn default_disclosure_by_type() -> BTreeMap<String, Vec<String>> {
    let fields = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
    BTreeMap::from([
        (
            "shelter".to_owned(),
            fields(&[
                "given_name",
                "gender",
                "age",
                "language",
                "risk_level",
                "immediate_needs",
            ]),
        ),
        (
            "medical".to_owned(),
            fields(&[
                "given_name",
                "family_name",
                "gender",
                "birth_date",
                "language",
            ]),
        ),
        (
            "legal_aid".to_owned(),
            fields(&[
                "given_name",
                "family_name",
                "patronymic",
                "birth_date",
                "citizenships",
                "language",
                "exploitation_types",
            ]),
        ),
    ])
}

/// The reporting service: where it listens, and how published figures protect people.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL other services use to reach it.
    pub endpoint: String,
    /// Counts from 1 to below this are suppressed in every published aggregate.
    #[serde(default = "default_privacy_threshold")]
    pub suppression_threshold: u32,
    /// The k of k-anonymity in record-level exports.
    #[serde(default = "default_privacy_threshold")]
    pub k_anonymity: u32,
    /// The privacy loss (ε) that releases under differential privacy may spend, in
    /// total, on the victim records of one calendar year.
    #[serde(default = "default_privacy_budget")]
    pub privacy_budget: f64,
}

fn default_privacy_threshold() -> u32 {
    11
}

fn default_privacy_budget() -> f64 {
    1.0
}

/// Fields a referral may disclose (intake knows how to share each).
pub const DISCLOSABLE_FIELDS: [&str; 13] = [
    "given_name",
    "family_name",
    "patronymic",
    "gender",
    "birth_date",
    "age",
    "citizenships",
    "languages",
    "phone",
    "language",
    "risk_level",
    "immediate_needs",
    "exploitation_types",
];

/// The intake service: where it listens, when it opens cases, its statutory clocks.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// URL other services use to reach it.
    pub endpoint: String,
    /// Open the case already at a `presumed_victim` decision (with consent to
    /// assistance), not only once the person is identified.
    pub open_case_when_presumed: bool,
    /// Statutory clocks of this deployment, started by identification decisions.
    pub clocks: Vec<ClockRule>,
    /// Local legal categories of exploitation a screening may record besides the HTCDS
    /// types (lower-case codes, e.g. `article_144_1`).
    #[serde(default)]
    pub local_exploitation_categories: Vec<String>,
}

/// A statutory deadline: when a decision reaches `starts_at_stage`, a clock starts at
/// the decision's time and is due `due_after_hours` later.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClockRule {
    /// Stable code, e.g. `police_referral`.
    pub name: String,
    /// What must happen by the due time.
    pub description: String,
    /// Identification stage that starts it, e.g. `presumed_victim`.
    pub starts_at_stage: String,
    /// Hours from the decision to the due time.
    pub due_after_hours: u32,
}

/// The founding deployment's statutory clocks.
pub fn default_clocks() -> Vec<ClockRule> {
    vec![
        ClockRule {
            name: "police_referral".to_owned(),
            description: "refer the presumed victim to the competent police unit".to_owned(),
            starts_at_stage: "presumed_victim".to_owned(),
            due_after_hours: 24,
        },
        ClockRule {
            name: "reflection_period_review".to_owned(),
            description: "review the recovery and reflection period (at least 30 days)".to_owned(),
            starts_at_stage: "reasonable_grounds_positive".to_owned(),
            due_after_hours: 30 * 24,
        },
    ]
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
    /// Whether a supervisor may approve a plan or closure they submitted themselves.
    /// Off by default: approval is a second person's check. A one-person
    /// organisation may turn it on.
    #[serde(default)]
    pub allow_self_approval: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database: DatabaseSettings {
                url: None,
                max_connections: 8,
                acquire_timeout_seconds: 5,
                lock_timeout_ms: default_lock_timeout_ms(),
            },
            auth: AuthSettings {
                issuer: "haven".to_owned(),
                audience: "haven-api".to_owned(),
                service_audience: "haven-internal".to_owned(),
                leeway_seconds: 30,
                public_key_file: None,
                public_key_algorithm: "RS256".to_owned(),
                public_key_id: None,
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
                metrics_listen: default_metrics_listen(),
                public_url: "http://127.0.0.1:8080".to_owned(),
                cors_allowed_origins: Vec::new(),
                body_limit_bytes: 1024 * 1024,
                request_timeout_ms: 10_000,
                tls_cert_file: None,
                tls_key_file: None,
                rate_limit_per_minute: 600,
                rate_limit_burst: 100,
            },
            intake: IntakeSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
                endpoint: "http://127.0.0.1:50051".to_owned(),
                open_case_when_presumed: false,
                clocks: default_clocks(),
                local_exploitation_categories: Vec::new(),
            },
            case: CaseSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
                endpoint: "http://127.0.0.1:50052".to_owned(),
                code_prefix: "HV".to_owned(),
                allow_self_approval: false,
            },
            referral: ReferralSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 50053)),
                endpoint: "http://127.0.0.1:50053".to_owned(),
                default_radius_km: default_radius_km(),
                gazetteer_file: None,
                disclosure: default_disclosure_by_type(),
                default_disclosure: default_disclosure(),
            },
            reporting: ReportingSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 50054)),
                endpoint: "http://127.0.0.1:50054".to_owned(),
                suppression_threshold: default_privacy_threshold(),
                k_anonymity: default_privacy_threshold(),
                privacy_budget: default_privacy_budget(),
            },
            grpc_tls: GrpcTlsSettings::default(),
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
        if let Some(key_id) = &self.auth.public_key_id {
            if key_id.is_empty() {
                return Err(invalid("auth.public_key_id", "must not be empty"));
            }
            if self.auth.public_key_file.is_none() {
                return Err(invalid(
                    "auth.public_key_id",
                    "is only used with auth.public_key_file",
                ));
            }
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
        if self.database.lock_timeout_ms == 0
            || self.database.lock_timeout_ms >= self.gateway.request_timeout_ms
        {
            return Err(invalid(
                "database.lock_timeout_ms",
                "must be at least 1 and below gateway.request_timeout_ms",
            ));
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
        if self.gateway.metrics_listen == self.gateway.listen && self.gateway.listen.port() != 0 {
            return Err(invalid(
                "gateway.metrics_listen",
                "must differ from gateway.listen: metrics are not served on the public API",
            ));
        }
        if self.gateway.rate_limit_per_minute == 0 {
            return Err(invalid(
                "gateway.rate_limit_per_minute",
                "must be at least 1",
            ));
        }
        if self.gateway.rate_limit_burst == 0 {
            return Err(invalid("gateway.rate_limit_burst", "must be at least 1"));
        }
        check_key_pair(
            (
                "gateway.tls_cert_file",
                self.gateway.tls_cert_file.as_deref(),
            ),
            ("gateway.tls_key_file", self.gateway.tls_key_file.as_deref()),
        )?;
        self.grpc_tls.validate()?;
        validate_clocks(&self.intake.clocks)?;
        check_url("intake.endpoint", &self.intake.endpoint)?;
        check_url("case.endpoint", &self.case.endpoint)?;
        check_url("referral.endpoint", &self.referral.endpoint)?;
        if !(self.referral.default_radius_km > 0.0 && self.referral.default_radius_km <= 20_000.0) {
            return Err(invalid(
                "referral.default_radius_km",
                "must be between 0 and 20000 km",
            ));
        }
        for (service_type, fields) in self
            .referral
            .disclosure
            .iter()
            .chain([(&"(default)".to_owned(), &self.referral.default_disclosure)])
        {
            if let Some(field) = fields
                .iter()
                .find(|field| !DISCLOSABLE_FIELDS.contains(&field.as_str()))
            {
                return Err(invalid(
                    "referral.disclosure",
                    &format!(
                        "`{field}` (for {service_type}) is not a field a referral can disclose"
                    ),
                ));
            }
        }
        check_url("reporting.endpoint", &self.reporting.endpoint)?;
        if !(2..=1_000).contains(&self.reporting.suppression_threshold) {
            return Err(invalid(
                "reporting.suppression_threshold",
                "must be 2 to 1000",
            ));
        }
        if !(2..=1_000).contains(&self.reporting.k_anonymity) {
            return Err(invalid("reporting.k_anonymity", "must be 2 to 1000"));
        }
        if !(0.01..=100.0).contains(&self.reporting.privacy_budget) {
            return Err(invalid(
                "reporting.privacy_budget",
                "must be an ε from 0.01 to 100",
            ));
        }
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

impl GrpcTlsSettings {
    /// Checks that certificate and key come together, that requiring client
    /// certificates comes with a server identity, and that every named file holds PEM.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_key_pair(
            ("grpc_tls.cert_file", self.cert_file.as_deref()),
            ("grpc_tls.key_file", self.key_file.as_deref()),
        )?;
        if let Some(path) = &self.client_ca_file {
            if !self.serves_tls() {
                return Err(invalid(
                    "grpc_tls.client_ca_file",
                    "requires grpc_tls.cert_file and grpc_tls.key_file: client certificates are only asked for over TLS",
                ));
            }
            check_pem_file("grpc_tls.client_ca_file", path, PemKind::Certificate)?;
        }
        if let Some(path) = &self.ca_file {
            check_pem_file("grpc_tls.ca_file", path, PemKind::Certificate)?;
        }
        Ok(())
    }
}

/// What a PEM file must contain.
#[derive(Debug, Clone, Copy)]
enum PemKind {
    Certificate,
    PrivateKey,
}

/// A certificate and its key: both set or neither, and both readable PEM.
fn check_key_pair(
    (cert_key, cert_path): (&str, Option<&Path>),
    (key_key, key_path): (&str, Option<&Path>),
) -> Result<(), ConfigError> {
    match (cert_path, key_path) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid(
            key_key,
            &format!("must be set when {cert_key} is set"),
        )),
        (None, Some(_)) => Err(invalid(
            cert_key,
            &format!("must be set when {key_key} is set"),
        )),
        (Some(cert_path), Some(key_path)) => {
            check_pem_file(cert_key, cert_path, PemKind::Certificate)?;
            check_pem_file(key_key, key_path, PemKind::PrivateKey)
        }
    }
}

/// Reads `path` and checks it holds the expected kind of PEM block. Full parsing
/// happens where the file is used; this catches a missing, unreadable or swapped
/// file at start-up with the key that names it.
fn check_pem_file(key: &str, path: &Path, kind: PemKind) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid(key, &format!("cannot read `{}`: {error}", path.display())))?;
    let holds_expected = text.lines().any(|line| {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            return false;
        };
        match kind {
            PemKind::Certificate => label == "CERTIFICATE",
            PemKind::PrivateKey => label.ends_with("PRIVATE KEY"),
        }
    });
    if holds_expected {
        return Ok(());
    }
    let expected = match kind {
        PemKind::Certificate => "a PEM certificate (-----BEGIN CERTIFICATE-----)",
        PemKind::PrivateKey => "a PEM private key (-----BEGIN PRIVATE KEY-----)",
    };
    Err(invalid(
        key,
        &format!("`{}` does not hold {expected}", path.display()),
    ))
}

/// Identification stages a clock can start at (intake's spelling).
pub const CLOCK_STAGES: [&str; 5] = [
    "presumed_victim",
    "reasonable_grounds_positive",
    "reasonable_grounds_negative",
    "identified",
    "not_a_victim",
];

fn validate_clocks(clocks: &[ClockRule]) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for clock in clocks {
        let code = !clock.name.is_empty()
            && clock.name.len() <= 64
            && clock
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        if !code || !names.insert(clock.name.as_str()) {
            return Err(invalid(
                "intake.clocks.name",
                "must be unique lower-case codes (letters and underscores)",
            ));
        }
        if !CLOCK_STAGES.contains(&clock.starts_at_stage.as_str()) {
            return Err(invalid(
                "intake.clocks.starts_at_stage",
                "must be one of presumed_victim, reasonable_grounds_positive, reasonable_grounds_negative, identified, not_a_victim",
            ));
        }
        if clock.due_after_hours == 0 || clock.due_after_hours > 24 * 366 {
            return Err(invalid(
                "intake.clocks.due_after_hours",
                "must be between 1 and 8784",
            ));
        }
    }
    Ok(())
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
        assert!(settings.gateway.metrics_listen.ip().is_loopback());
        assert_ne!(settings.gateway.metrics_listen, settings.gateway.listen);
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
    fn a_deployment_defines_its_own_clocks_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haven.toml");
        std::fs::write(
            &file,
            "[intake]\nopen_case_when_presumed = true\n\n[[intake.clocks]]\nname = \"prosecutor_notice\"\n\
             description = \"notify the prosecutor\"\nstarts_at_stage = \"identified\"\ndue_after_hours = 72\n",
        )
        .unwrap();
        let settings = Settings::load_from(Some(&file), vars(&[])).unwrap();
        assert!(settings.intake.open_case_when_presumed);
        assert_eq!(settings.intake.clocks.len(), 1);
        assert_eq!(settings.intake.clocks[0].due_after_hours, 72);
        std::fs::write(
            &file,
            "[[intake.clocks]]\nname = \"x\"\ndescription = \"x\"\nstarts_at_stage = \"arrested\"\ndue_after_hours = 1\n",
        )
        .unwrap();
        let error = Settings::load_from(Some(&file), vars(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("intake.clocks.starts_at_stage"), "{error}");
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

    /// Writes PEM-looking files into a temporary directory.
    struct PemFiles {
        dir: tempfile::TempDir,
    }

    impl PemFiles {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(
                dir.path().join("cert.pem"),
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            )
            .unwrap();
            std::fs::write(
                dir.path().join("key.pem"),
                "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
            )
            .unwrap();
            Self { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }
    }

    fn load_error(pairs: &[(&str, &str)]) -> String {
        Settings::load_from(None, vars(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_plaintext_with_a_rate_limit() {
        let settings = Settings::load_from(None, vars(&[])).unwrap();
        assert!(settings.gateway.tls_cert_file.is_none());
        assert!(settings.gateway.tls_key_file.is_none());
        assert!(!settings.grpc_tls.serves_tls());
        assert!(settings.grpc_tls.client_ca_file.is_none());
        assert!(settings.grpc_tls.ca_file.is_none());
        assert!(settings.gateway.rate_limit_per_minute > 0);
        assert!(settings.gateway.rate_limit_burst > 0);
    }

    #[test]
    fn tls_files_load_from_the_environment() {
        let files = PemFiles::new();
        let cert = files.path("cert.pem");
        let key = files.path("key.pem");
        let settings = Settings::load_from(
            None,
            vars(&[
                ("HAVEN__GATEWAY__TLS_CERT_FILE", &cert),
                ("HAVEN__GATEWAY__TLS_KEY_FILE", &key),
                ("HAVEN__GRPC_TLS__CERT_FILE", &cert),
                ("HAVEN__GRPC_TLS__KEY_FILE", &key),
                ("HAVEN__GRPC_TLS__CLIENT_CA_FILE", &cert),
                ("HAVEN__GRPC_TLS__CA_FILE", &cert),
                ("HAVEN__GATEWAY__RATE_LIMIT_PER_MINUTE", "120"),
                ("HAVEN__GATEWAY__RATE_LIMIT_BURST", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.gateway.tls_cert_file.as_deref(),
            Some(Path::new(&cert))
        );
        assert!(settings.grpc_tls.serves_tls());
        assert_eq!(
            settings.grpc_tls.client_ca_file.as_deref(),
            Some(Path::new(&cert))
        );
        assert_eq!(settings.grpc_tls.ca_file.as_deref(), Some(Path::new(&cert)));
        assert_eq!(settings.gateway.rate_limit_per_minute, 120);
        assert_eq!(settings.gateway.rate_limit_burst, 10);
    }

    #[test]
    fn a_certificate_without_its_key_names_the_missing_key() {
        let files = PemFiles::new();
        let cert = files.path("cert.pem");
        let key = files.path("key.pem");

        let error = load_error(&[("HAVEN__GRPC_TLS__CERT_FILE", &cert)]);
        assert!(error.contains("`grpc_tls.key_file`"), "{error}");
        let error = load_error(&[("HAVEN__GRPC_TLS__KEY_FILE", &key)]);
        assert!(error.contains("`grpc_tls.cert_file`"), "{error}");
        let error = load_error(&[("HAVEN__GATEWAY__TLS_CERT_FILE", &cert)]);
        assert!(error.contains("`gateway.tls_key_file`"), "{error}");
        let error = load_error(&[("HAVEN__GATEWAY__TLS_KEY_FILE", &key)]);
        assert!(error.contains("`gateway.tls_cert_file`"), "{error}");
    }

    #[test]
    fn a_missing_tls_file_names_its_key() {
        let files = PemFiles::new();
        let cert = files.path("cert.pem");
        let missing = files.path("missing.pem");

        let error = load_error(&[
            ("HAVEN__GATEWAY__TLS_CERT_FILE", &cert),
            ("HAVEN__GATEWAY__TLS_KEY_FILE", &missing),
        ]);
        assert!(error.contains("`gateway.tls_key_file`"), "{error}");
        assert!(error.contains("cannot read"), "{error}");

        let error = load_error(&[("HAVEN__GRPC_TLS__CA_FILE", &missing)]);
        assert!(error.contains("`grpc_tls.ca_file`"), "{error}");
        assert!(error.contains("cannot read"), "{error}");
    }

    #[test]
    fn swapped_certificate_and_key_are_refused() {
        let files = PemFiles::new();
        let error = load_error(&[
            ("HAVEN__GRPC_TLS__CERT_FILE", &files.path("key.pem")),
            ("HAVEN__GRPC_TLS__KEY_FILE", &files.path("cert.pem")),
        ]);
        assert!(error.contains("`grpc_tls.cert_file`"), "{error}");
        assert!(error.contains("PEM certificate"), "{error}");

        let error = load_error(&[
            ("HAVEN__GRPC_TLS__CERT_FILE", &files.path("cert.pem")),
            ("HAVEN__GRPC_TLS__KEY_FILE", &files.path("cert.pem")),
        ]);
        assert!(error.contains("`grpc_tls.key_file`"), "{error}");
        assert!(error.contains("PEM private key"), "{error}");
    }

    #[test]
    fn requiring_client_certificates_needs_a_server_identity() {
        let files = PemFiles::new();
        let error = load_error(&[("HAVEN__GRPC_TLS__CLIENT_CA_FILE", &files.path("cert.pem"))]);
        assert!(error.contains("`grpc_tls.client_ca_file`"), "{error}");
    }

    #[test]
    fn a_zero_rate_limit_is_refused() {
        let error = load_error(&[("HAVEN__GATEWAY__RATE_LIMIT_PER_MINUTE", "0")]);
        assert!(error.contains("gateway.rate_limit_per_minute"), "{error}");
        let error = load_error(&[("HAVEN__GATEWAY__RATE_LIMIT_BURST", "0")]);
        assert!(error.contains("gateway.rate_limit_burst"), "{error}");
    }

    #[test]
    fn metrics_listen_loads_from_the_environment_and_must_differ_from_the_api() {
        let settings = Settings::load_from(
            None,
            vars(&[("HAVEN__GATEWAY__METRICS_LISTEN", "0.0.0.0:9464")]),
        )
        .unwrap();
        assert_eq!(
            settings.gateway.metrics_listen,
            "0.0.0.0:9464".parse().unwrap()
        );
        let error = load_error(&[
            ("HAVEN__GATEWAY__LISTEN", "0.0.0.0:8080"),
            ("HAVEN__GATEWAY__METRICS_LISTEN", "0.0.0.0:8080"),
        ]);
        assert!(error.contains("gateway.metrics_listen"), "{error}");
    }

    #[test]
    fn a_public_key_id_needs_a_public_key() {
        let error = load_error(&[("HAVEN__AUTH__PUBLIC_KEY_ID", "prod-2026")]);
        assert!(error.contains("auth.public_key_id"), "{error}");
    }
}
