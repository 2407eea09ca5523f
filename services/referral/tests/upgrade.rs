//! Upgrading a referral database written before referral texts were encrypted, on
//! SQLite and on Postgres: the earlier referrals keep their texts, which are encrypted
//! at start-up, and intake's feed is read again to learn whose screenings they are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use sqlx::migrate::Migrator;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_config::Settings;
use haven_events::EventSignal;
use haven_referral::crypto::ReferralCrypto;
use haven_storage::{Database, MigrationSet};

/// The referral schema as it was before texts were encrypted.
const BEFORE: MigrationSet = MigrationSet {
    table: "_sqlx_migrations",
    sqlite: || before(sqlx::migrate!("migrations/sqlite")),
    postgres: || before(sqlx::migrate!("migrations/postgres")),
};

fn before(mut migrator: Migrator) -> Migrator {
    migrator.migrations = Cow::Owned(
        migrator
            .migrations
            .iter()
            .filter(|migration| migration.version < 3)
            .cloned()
            .collect(),
    );
    migrator
}

async fn setup(settings: &Settings) -> Settings {
    settings.clone()
}

async fn execute(database: &Database, sql: &str) {
    match database {
        Database::Sqlite(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .map(drop),
        Database::Postgres(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap();
}

fn id_literal(database: &Database, id: Uuid) -> String {
    match database {
        Database::Sqlite(_) => format!("X'{}'", id.simple()),
        Database::Postgres(_) => format!("'{id}'"),
    }
}

async fn earlier_referrals_keep_their_texts_encrypted_after_the_upgrade(settings: Settings) {
    let old = Database::connect(&settings, haven_referral::SERVICE, &[])
        .await
        .unwrap();
    old.migrate(&[haven_events::MIGRATIONS, haven_audit::MIGRATIONS, BEFORE])
        .await
        .unwrap();
    let (organization, facility, referral, screening) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let [organization_id, facility_id, referral_id, screening_id] =
        [organization, facility, referral, screening].map(|id| id_literal(&old, id));
    let at = "'2026-11-01T10:00:00Z'";
    execute(
        &old,
        &format!(
            "INSERT INTO organizations (id, name, organization_type, settlement, active, created_by, created_at, version) \
             VALUES ({organization_id}, 'Shelter', 'ngo', 'Baku', TRUE, 'admin', {at}, 1);
             INSERT INTO facilities (id, organization_id, name, address, settlement, latitude, longitude, capacity_total, \
             capacity_free, accepts, languages, opening_hours, contact_phone, contact_email, active, version, created_by, created_at) \
             VALUES ({facility_id}, {organization_id}, 'Shelter', 'Main street', 'Baku', 40.4, 49.8, 5, 5, \
             '{{\"genders\":[],\"age_groups\":[],\"minors\":false,\"families\":false}}', '[]', '', '', '', TRUE, 1, 'admin', {at});
             INSERT INTO referrals (id, case_id, case_code, screening_id, from_organization_id, to_organization_id, facility_id, \
             service_type, purpose, urgency, requested_by, requested_at, accept_by, outcome_due_on, status, status_reason, version, updated_at) \
             VALUES ({referral_id}, {referral_id}, 'HV-2026-000009', {screening_id}, {organization_id}, {organization_id}, {facility_id}, \
             'shelter', 'escaped the flat in Sumqayit', 'urgent', 'worker', {at}, {at}, '2026-12-31', 'declined', \
             'no room for her son', 1, {at});
             INSERT INTO event_checkpoints (source, sequence) VALUES ('intake', 7);"
        ),
    )
    .await;
    old.close().await;

    let database = haven_referral::connect(&settings).await.unwrap();
    let store = haven_referral::store::open(
        database.clone(),
        EventSignal::default(),
        ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap(),
    );
    assert_eq!(store.encrypt_legacy_texts().await.unwrap(), 1);
    let context = AuditContext {
        principal: Principal {
            subject: "worker".into(),
            organization_id: organization,
            roles: vec![Role::CaseWorker],
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "req".into(),
        on_behalf_of: None,
    };
    let read = store
        .get_referral(&context, Scope::Organization(organization), referral)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.purpose, "escaped the flat in Sumqayit");
    assert_eq!(read.status_reason, "no room for her son");
    let sql = "SELECT purpose, status_reason FROM referrals WHERE id = $1";
    let (purpose, status_reason): (Vec<u8>, Vec<u8>) = match &database {
        Database::Sqlite(pool) => sqlx::query_as(sql).bind(referral).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_as(sql).bind(referral).fetch_one(pool).await,
    }
    .unwrap();
    assert_ne!(purpose, b"escaped the flat in Sumqayit");
    assert_ne!(status_reason, b"no room for her son");
    // Intake's feed is read from the start again.
    assert_eq!(store.checkpoint("intake").await.unwrap(), 0);
}

haven_storage::backend_suite! {
    setup = setup;
    earlier_referrals_keep_their_texts_encrypted_after_the_upgrade,
}
