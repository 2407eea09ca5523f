//! Operator commands: audit verification and master-key rotation.

use std::path::Path;

use haven_audit::{HEAD_KEY_FILE, HeadReport, SignedReport, VerifyReport};

use crate::ServiceName;
use haven_config::Settings;
use haven_crypto::{AuditHeadKey, KeyWrapper as _, MasterKeyring};
use haven_events::EventSignal;
use haven_intake::persons::{MASTER_KEYRING_FILE, PersonCrypto};

/// What `haven audit verify` found in one service's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFinding {
    /// The database keeps no audit log.
    NoAuditLog,
    /// The chain, checked against the head signed under the audit head key.
    Checked(SignedReport),
    /// The audit head key is absent: only the links were checked, and a chain with
    /// entries is reported as unverifiable.
    NoHeadKey(VerifyReport),
}

impl AuditFinding {
    /// Whether this service's trail verified.
    pub fn is_ok(&self) -> bool {
        match self {
            Self::NoAuditLog => true,
            Self::Checked(report) => report.is_ok(),
            Self::NoHeadKey(chain) => {
                matches!(chain, VerifyReport::Ok { entries: 0, .. })
            }
        }
    }

    /// One line per finding, as the operator reads it.
    pub fn lines(&self, service: &str, key_path: &Path) -> Vec<String> {
        let chain_line = |chain: &VerifyReport| match chain {
            VerifyReport::Ok { entries, head_hash } => {
                format!("{service}: audit chain intact, {entries} entries, head {head_hash}")
            }
            other => format!("{service}: {other}"),
        };
        match self {
            Self::NoAuditLog => vec![format!("{service}: keeps no audit log")],
            Self::Checked(SignedReport { chain, head }) => {
                let mut lines = vec![chain_line(chain)];
                match head {
                    HeadReport::Signed { .. } | HeadReport::Empty if chain.is_ok() => {
                        if let Some(first) = lines.first_mut() {
                            first.push_str(&format!("; {head}"));
                        }
                    }
                    HeadReport::Signed { .. } | HeadReport::Empty => {}
                    broken => lines.push(format!("{service}: {broken}")),
                }
                lines
            }
            Self::NoHeadKey(chain) => {
                let mut lines = vec![chain_line(chain)];
                if !self.is_ok() {
                    lines.push(format!(
                        "{service}: signed head not checked — no audit head key at {}; \
                         truncation and rehashing cannot be detected without it",
                        key_path.display()
                    ));
                }
                lines
            }
        }
    }
}

/// The audit head key `haven audit verify` checks heads with: the one the services
/// sign with, in the data directory's key folder.
pub fn head_key_path(settings: &Settings) -> std::path::PathBuf {
    haven_auth::keys::keys_dir(&settings.data_dir).join(HEAD_KEY_FILE)
}

/// Checks the audit trail of every service database that keeps one, against its
/// signed head. Every service `haven up` runs is asked, so a service that keeps a
/// trail cannot be forgotten.
pub async fn check_audit(settings: &Settings) -> anyhow::Result<Vec<(ServiceName, AuditFinding)>> {
    let key_path = head_key_path(settings);
    // Never created here: a new key would make every signed head look forged.
    let key = if key_path.exists() {
        Some(AuditHeadKey::load(&key_path).map_err(|error| anyhow::anyhow!("{error}"))?)
    } else {
        None
    };
    let mut findings = Vec::new();
    for service in ServiceName::ALL {
        let name = service.as_str();
        let database = service.connect(settings).await?;
        let finding = check_service(&database, name, key.as_ref())
            .await
            .map_err(|error| anyhow::anyhow!("{name}: {error}"));
        database.close().await;
        findings.push((service, finding?));
    }
    Ok(findings)
}

/// Verifies every service's audit trail (see [`check_audit`]). Prints each
/// service's findings; fails if any chain is broken, truncated or rehashed.
pub async fn verify_audit(settings: &Settings) -> anyhow::Result<()> {
    let key_path = head_key_path(settings);
    let mut broken = Vec::new();
    for (service, finding) in check_audit(settings).await? {
        for line in finding.lines(service.as_str(), &key_path) {
            println!("{line}");
        }
        if !finding.is_ok() {
            broken.push(service.as_str());
        }
    }
    anyhow::ensure!(
        broken.is_empty(),
        "audit chain broken in {}",
        broken.join(", ")
    );
    Ok(())
}

async fn check_service(
    database: &haven_storage::Database,
    service: &str,
    key: Option<&AuditHeadKey>,
) -> Result<AuditFinding, haven_error::HavenError> {
    if !haven_audit::holds_audit_log(database).await? {
        return Ok(AuditFinding::NoAuditLog);
    }
    Ok(match key {
        Some(key) => {
            AuditFinding::Checked(haven_audit::verify_signed(database, service, key).await?)
        }
        None => AuditFinding::NoHeadKey(haven_audit::verify(database).await?),
    })
}

/// Creates a fresh master keyring, blind-index key, audit head key and perturbation
/// key in `directory`, refusing to replace existing ones (that would make every
/// encrypted record unreadable, every signed audit head look forged, or every
/// published figure change).
pub fn init_keys(directory: &std::path::Path) -> anyhow::Result<()> {
    let keyring_path = directory.join(MASTER_KEYRING_FILE);
    let blind_path = directory.join(haven_intake::persons::BLIND_INDEX_KEY_FILE);
    let head_path = directory.join(HEAD_KEY_FILE);
    let perturbation_path = directory.join(haven_reporting::PERTURBATION_KEY_FILE);
    for path in [&keyring_path, &blind_path, &head_path, &perturbation_path] {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists; Haven never replaces keys (data encrypted under them would be lost)",
            path.display()
        );
    }
    std::fs::create_dir_all(directory)?;
    MasterKeyring::load_or_create(&keyring_path).map_err(|error| anyhow::anyhow!("{error}"))?;
    haven_crypto::BlindIndexKey::load_or_create(&blind_path)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    AuditHeadKey::load_or_create(&head_path).map_err(|error| anyhow::anyhow!("{error}"))?;
    haven_crypto::PerturbationKey::load_or_create(&perturbation_path)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    println!(
        "created {}, {}, {} and {}; keep them in your secret store and back them up",
        keyring_path.display(),
        blind_path.display(),
        head_path.display(),
        perturbation_path.display()
    );
    Ok(())
}

/// Adds and activates a new master key version, then re-wraps every person's and case's key.
pub async fn rotate_keys(settings: &Settings) -> anyhow::Result<()> {
    let keys_dir = haven_auth::keys::keys_dir(&settings.data_dir);
    let path = keys_dir.join(MASTER_KEYRING_FILE);
    std::fs::create_dir_all(&keys_dir)?;
    let mut keyring =
        MasterKeyring::load_or_create(&path).map_err(|error| anyhow::anyhow!("{error}"))?;
    let version = keyring
        .rotate()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    keyring
        .save(&path)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let rewrapped = rewrap(settings).await?;
    let previous = keyring
        .versions()
        .into_iter()
        .filter(|held| *held != version)
        .max();
    for line in rotation_steps(&path, version, previous, rewrapped) {
        println!("{line}");
    }
    Ok(())
}

/// What `haven keys rotate` tells the operator: what it did, then what is left to
/// do, in order.
pub fn rotation_steps(
    path: &Path,
    version: u32,
    previous: Option<u32>,
    rewrapped: u64,
) -> Vec<String> {
    let path = path.display();
    let mut steps = vec![
        format!(
            "master key version {version} is active in {path}; re-wrapped {rewrapped} person,              case and referral keys under it"
        ),
        "next, in order:".to_owned(),
        format!(
            "  1. nothing to restart: every running service that reads {path} picks version              {version} up by itself (at once for a key wrapped under it, within a second for new keys)"
        ),
        format!(
            "  2. back up {path} now, beside the database backup: what is wrapped under version              {version} cannot be read without this file"
        ),
        format!(
            "  3. if services read a copy of it (the Kubernetes Secret `haven-keys`, another host),              replace every copy with {path} now: until a copy is replaced, its services cannot              read the records re-wrapped under version {version}"
        ),
    ];
    if let Some(previous) = previous {
        steps.push(format!(
            "  4. once every copy holds version {version}, retire the old one with              `haven keys retire {previous}`, then replace the copies and the backup again"
        ));
    }
    steps
}

/// Retires an old master key version once nothing is wrapped under it any more.
pub async fn retire_key(settings: &Settings, version: u32) -> anyhow::Result<()> {
    let path = haven_auth::keys::keys_dir(&settings.data_dir).join(MASTER_KEYRING_FILE);
    let mut keyring = MasterKeyring::load(&path).map_err(|error| anyhow::anyhow!("{error}"))?;
    anyhow::ensure!(
        version != keyring.active_version(),
        "version {version} is the active master key; rotate first"
    );
    // Anything still wrapped under the old version moves to the active one first.
    let rewrapped = rewrap(settings).await?;
    keyring
        .retire(version)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    keyring
        .save(&path)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    println!(
        "master key version {version} retired; re-wrapped {rewrapped} person, case and referral keys first"
    );
    Ok(())
}

async fn rewrap(settings: &Settings) -> anyhow::Result<u64> {
    let database = haven_intake::connect(settings).await?;
    let crypto = PersonCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    let store = haven_intake::store::open(
        database.clone(),
        EventSignal::default(),
        crypto,
        &settings.case.code_prefix,
    );
    let persons = store
        .rewrap_person_keys()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    database.close().await;
    // Cases keep their own keys for notes and plans, under the same master keyring.
    let database = haven_case::connect(settings).await?;
    let cases = haven_case::store::open(
        database.clone(),
        EventSignal::default(),
        haven_case::crypto::CaseCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir))?,
        haven_case::store::StoreOptions {
            code_prefix: settings.case.code_prefix.clone(),
            allow_self_approval: settings.case.allow_self_approval,
        },
    )
    .rewrap_keys()
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    database.close().await;
    // Referrals keep their own keys for their texts, under the same master keyring.
    let database = haven_referral::connect(settings).await?;
    let referrals = haven_referral::store::open(
        database.clone(),
        EventSignal::default(),
        haven_referral::crypto::ReferralCrypto::load(&haven_auth::keys::keys_dir(
            &settings.data_dir,
        ))?,
    )
    .rewrap_keys()
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    database.close().await;
    Ok(persons + cases + referrals)
}

/// Empties reporting's projections and checkpoints; the feeds are applied again from
/// the start when the reporting service next runs.
pub async fn rebuild_reporting(settings: &Settings) -> anyhow::Result<()> {
    let database = haven_reporting::connect(settings).await?;
    let keys = haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir))?;
    haven_reporting::projections::open(database.clone(), keys)
        .rebuild()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    database.close().await;
    println!(
        "reporting projections emptied; start the reporting service to rebuild them from the event feeds"
    );
    Ok(())
}
