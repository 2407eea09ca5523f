//! Operator commands: audit verification and master-key rotation.

use haven_audit::VerifyReport;

use crate::ServiceName;
use haven_config::Settings;
use haven_crypto::{KeyWrapper as _, MasterKeyring};
use haven_events::EventSignal;
use haven_intake::persons::{MASTER_KEYRING_FILE, PersonCrypto};

/// Verifies the audit chain of every service database that keeps one. Every service
/// `haven up` runs is asked, so a service that keeps a trail cannot be forgotten.
/// Prints one line per service; fails if any chain is broken.
pub async fn verify_audit(settings: &Settings) -> anyhow::Result<()> {
    let mut broken = Vec::new();
    for service in ServiceName::ALL {
        let name = service.as_str();
        let database = service.connect(settings).await?;
        let report = verify_service(&database)
            .await
            .map_err(|error| anyhow::anyhow!("{name}: {error}"));
        database.close().await;
        match report? {
            None => println!("{name}: keeps no audit log"),
            Some(VerifyReport::Ok { entries, head_hash }) => {
                println!("{name}: audit chain intact, {entries} entries, head {head_hash}");
            }
            Some(other) => {
                println!("{name}: {other}");
                broken.push(name);
            }
        }
    }
    anyhow::ensure!(
        broken.is_empty(),
        "audit chain broken in {}",
        broken.join(", ")
    );
    Ok(())
}

/// The report on the database's chain, or `None` if it keeps no audit log.
async fn verify_service(
    database: &haven_storage::Database,
) -> Result<Option<VerifyReport>, haven_error::HavenError> {
    if !haven_audit::holds_audit_log(database).await? {
        return Ok(None);
    }
    haven_audit::verify(database).await.map(Some)
}

/// Creates a fresh master keyring and blind-index key in `directory`, refusing to
/// replace existing ones (that would make every encrypted record unreadable).
pub fn init_keys(directory: &std::path::Path) -> anyhow::Result<()> {
    let keyring_path = directory.join(MASTER_KEYRING_FILE);
    let blind_path = directory.join(haven_intake::persons::BLIND_INDEX_KEY_FILE);
    for path in [&keyring_path, &blind_path] {
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
    println!(
        "created {} and {}; keep them in your secret store and back them up",
        keyring_path.display(),
        blind_path.display()
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
    println!(
        "master key version {version} is active; re-wrapped {rewrapped} person, case and referral keys"
    );
    println!("restart the services so that new persons are wrapped under version {version} too");
    Ok(())
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
    haven_reporting::projections::open(database.clone())
        .rebuild()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    database.close().await;
    println!(
        "reporting projections emptied; start the reporting service to rebuild them from the event feeds"
    );
    Ok(())
}
