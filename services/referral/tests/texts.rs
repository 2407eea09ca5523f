//! A referral's free texts (purpose, status reason, outcome) on SQLite and on
//! Postgres: both organisations read them back and each read is audited, the stored
//! bytes never hold them in clear, erasing the person leaves them unreadable, and rows
//! written before encryption are encrypted once at start-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_config::Settings;
use haven_crypto::{MASTER_KEYRING_FILE, MasterKeyring};
use haven_events::EventSignal;
use haven_proto::common::v1::Event;
use haven_referral::crypto::ReferralCrypto;
use haven_referral::domain::{
    Acceptance, Facility, FacilityDetails, OrganizationType, Referral, ReferralStatus, Urgency,
};
use haven_referral::geo::Gazetteer;
use haven_referral::store::{
    self, DirectoryStore, NewOrganization, NewReferral, ReferralFilter, StatusChange,
};
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn DirectoryStore>,
    database: Database,
    data_dir: PathBuf,
    sender: Uuid,
    receiver: Uuid,
    facility: Facility,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_referral::connect(settings).await.unwrap();
    let store = store::open(
        database.clone(),
        EventSignal::default(),
        ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap(),
    );
    let mut ids = Vec::new();
    for name in ["Sending centre", "Receiving shelter"] {
        let organization = store
            .create_organization(
                NewOrganization {
                    id: Some(Uuid::new_v4()),
                    name: name.into(),
                    organization_type: OrganizationType::Ngo,
                    settlement: "Bakı".into(),
                    created_by: "admin".into(),
                },
                None,
            )
            .await
            .map(|created| created.record)
            .unwrap();
        ids.push(organization.id);
    }
    let gazetteer = Gazetteer::default_settlements();
    let facility = store
        .create_facility(
            &staff(ids[1]),
            ids[1],
            FacilityDetails {
                name: "Shelter in Bakı".into(),
                address: "1 Main street".into(),
                settlement: "Bakı".into(),
                point: gazetteer.find("Bakı").unwrap().point,
                service_types: vec!["shelter".into()],
                capacity_total: 10,
                accepts: Acceptance {
                    genders: vec!["female".into()],
                    age_groups: vec![],
                    minors: false,
                    families: true,
                },
                languages: vec!["az".into()],
                opening_hours: "24/7".into(),
                contact_phone: "+994 12 000 00 00".into(),
                contact_email: String::new(),
                active: true,
            },
            None,
        )
        .await
        .unwrap()
        .record;
    Fixture {
        store,
        database,
        data_dir: settings.data_dir.clone(),
        sender: ids[0],
        receiver: ids[1],
        facility,
    }
}

fn staff(organization: Uuid) -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: format!("staff-{organization}"),
            organization_id: organization,
            roles: vec![Role::CaseWorker, Role::Supervisor],
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "req".into(),
        on_behalf_of: None,
    }
}

impl Fixture {
    async fn refer(&self, screening_id: Uuid, purpose: &str) -> Referral {
        let now = OffsetDateTime::now_utc();
        self.store
            .create_referral(
                &staff(self.sender),
                NewReferral {
                    case_id: Uuid::new_v4(),
                    case_code: "HV-2026-000001".into(),
                    screening_id,
                    from_organization_id: self.sender,
                    facility: self.facility.clone(),
                    service_type: "shelter".into(),
                    purpose: purpose.into(),
                    urgency: Urgency::Urgent,
                    accept_by: now + Urgency::Urgent.answer_within(),
                    outcome_due_on: (now + Duration::days(30)).date(),
                },
                None,
            )
            .await
            .map(|created| created.record)
            .unwrap()
    }

    async fn move_to(
        &self,
        organization: Uuid,
        referral: &Referral,
        to: ReferralStatus,
        reason: &str,
        outcome: &str,
    ) -> Referral {
        self.store
            .change_referral_status(
                &staff(organization),
                Scope::Organization(organization),
                referral.id,
                referral.version,
                StatusChange {
                    to,
                    reason: reason.into(),
                    outcome: outcome.into(),
                },
            )
            .await
            .unwrap()
            .unwrap()
    }

    async fn read(&self, organization: Uuid, id: Uuid) -> Referral {
        self.store
            .get_referral(&staff(organization), Scope::Organization(organization), id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn list(&self, organization: Uuid) -> Vec<Referral> {
        self.store
            .list_referrals(
                &staff(organization),
                Scope::Organization(organization),
                &ReferralFilter::default(),
                None,
                50,
            )
            .await
            .unwrap()
    }

    /// Who read the referral, as the audit log records it.
    async fn readers(&self, id: Uuid) -> Vec<String> {
        let sql = "SELECT actor FROM audit_log WHERE action = 'referral.read' AND record_id = $1 ORDER BY sequence";
        let rows: Vec<(String,)> = match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).bind(id).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_as(sql).bind(id).fetch_all(pool).await,
        }
        .unwrap();
        rows.into_iter().map(|(actor,)| actor).collect()
    }

    /// What the audit log records about the referral: action and actor, in order.
    async fn entries(&self, id: Uuid) -> Vec<(String, String)> {
        let sql = "SELECT action, actor FROM audit_log WHERE record_id = $1 ORDER BY sequence";
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).bind(id).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_as(sql).bind(id).fetch_all(pool).await,
        }
        .unwrap()
    }

    /// Every stored byte of the referral service: the SQLite files (the WAL
    /// included), or on Postgres the texts of every referral row and its columns.
    async fn stored_bytes(&self) -> Vec<u8> {
        match &self.database {
            Database::Sqlite(_) => {
                let mut bytes = Vec::new();
                for name in ["referral.db", "referral.db-wal"] {
                    if let Ok(file) = std::fs::read(self.data_dir.join(name)) {
                        bytes.extend(file);
                    }
                }
                bytes
            }
            Database::Postgres(pool) => {
                let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                    "SELECT r::text, purpose || status_reason || outcome FROM referrals r",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                let mut bytes = Vec::new();
                for (row, texts) in rows {
                    bytes.extend(row.into_bytes());
                    bytes.extend(texts);
                }
                let logs: Vec<(String,)> = sqlx::query_as(
                    "SELECT payload FROM outbox_events UNION ALL SELECT a::text FROM audit_log a",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for (text,) in logs {
                    bytes.extend(text.into_bytes());
                }
                bytes
            }
        }
    }

    async fn apply(&self, sequence: u64, event_type: &str, aggregate: Uuid, payload: String) {
        self.store
            .apply(&Event {
                source: "intake".into(),
                sequence,
                event_type: event_type.into(),
                aggregate_id: aggregate.to_string(),
                organization_id: self.sender.to_string(),
                payload_json: payload,
                ..Event::default()
            })
            .await
            .unwrap();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn both_organisations_read_the_texts_and_every_read_is_audited(fixture: Fixture) {
    let declined = fixture
        .refer(Uuid::new_v4(), "needs a bed away from the recruiter")
        .await;
    let declined = fixture
        .move_to(
            fixture.receiver,
            &declined,
            ReferralStatus::Declined,
            "no room for her two children",
            "",
        )
        .await;
    assert_eq!(declined.purpose, "needs a bed away from the recruiter");
    assert_eq!(declined.status_reason, "no room for her two children");
    let completed = fixture.refer(Uuid::new_v4(), "trauma counselling").await;
    let completed = fixture
        .move_to(
            fixture.receiver,
            &completed,
            ReferralStatus::Accepted,
            "",
            "",
        )
        .await;
    let completed = fixture
        .move_to(
            fixture.receiver,
            &completed,
            ReferralStatus::InProgress,
            "",
            "",
        )
        .await;
    let completed = fixture
        .move_to(
            fixture.receiver,
            &completed,
            ReferralStatus::Completed,
            "",
            "attended eight sessions",
        )
        .await;
    for organization in [fixture.sender, fixture.receiver] {
        let read = fixture.read(organization, declined.id).await;
        assert_eq!(read.purpose, "needs a bed away from the recruiter");
        assert_eq!(read.status_reason, "no room for her two children");
        assert_eq!(read.outcome, "");
        let read = fixture.read(organization, completed.id).await;
        assert_eq!(read.purpose, "trauma counselling");
        assert_eq!(read.outcome, "attended eight sessions");
        let listed = fixture.list(organization).await;
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&fixture.read(organization, completed.id).await));
    }
    // Each get and each listed referral is one entry, by whoever read.
    let sender = format!("staff-{}", fixture.sender);
    let receiver = format!("staff-{}", fixture.receiver);
    assert_eq!(
        fixture.readers(declined.id).await,
        vec![
            sender.clone(),
            sender.clone(),
            receiver.clone(),
            receiver.clone()
        ]
    );
    assert_eq!(
        fixture.readers(completed.id).await,
        vec![
            sender.clone(),
            sender.clone(),
            sender,
            receiver.clone(),
            receiver.clone(),
            receiver
        ]
    );
}

async fn a_request_and_a_move_return_their_texts_under_their_own_entry(fixture: Fixture) {
    let sender = format!("staff-{}", fixture.sender);
    let receiver = format!("staff-{}", fixture.receiver);
    let referral = fixture.refer(Uuid::new_v4(), "legal advice").await;
    assert_eq!(referral.purpose, "legal advice");
    assert_eq!(
        fixture.entries(referral.id).await,
        vec![("referral.requested".to_owned(), sender.clone())]
    );
    // A move the caller may not make opens nothing and records nothing.
    let refused = fixture
        .store
        .change_referral_status(
            &staff(fixture.sender),
            Scope::Organization(fixture.sender),
            referral.id,
            referral.version,
            StatusChange {
                to: ReferralStatus::Declined,
                reason: "not ours to decline".into(),
                outcome: String::new(),
            },
        )
        .await;
    assert!(refused.is_err());
    let declined = fixture
        .move_to(
            fixture.receiver,
            &referral,
            ReferralStatus::Declined,
            "no interpreter this week",
            "",
        )
        .await;
    assert_eq!(declined.purpose, "legal advice");
    assert_eq!(declined.status_reason, "no interpreter this week");
    assert_eq!(
        fixture.entries(referral.id).await,
        vec![
            ("referral.requested".to_owned(), sender),
            ("referral.declined".to_owned(), receiver),
        ]
    );
}

async fn the_stored_bytes_never_hold_the_texts_in_clear(fixture: Fixture) {
    let purpose = "canary-purpose-7f3a9c";
    let reason = "canary-reason-5b1e2d";
    let outcome = "canary-outcome-9d4c7e";
    let declined = fixture.refer(Uuid::new_v4(), purpose).await;
    fixture
        .move_to(
            fixture.receiver,
            &declined,
            ReferralStatus::Declined,
            reason,
            "",
        )
        .await;
    let completed = fixture.refer(Uuid::new_v4(), purpose).await;
    let completed = fixture
        .move_to(
            fixture.receiver,
            &completed,
            ReferralStatus::Accepted,
            "",
            "",
        )
        .await;
    fixture
        .move_to(
            fixture.receiver,
            &completed,
            ReferralStatus::Completed,
            "",
            outcome,
        )
        .await;
    // Read back, so the texts were really written.
    assert_eq!(
        fixture
            .read(fixture.sender, declined.id)
            .await
            .status_reason,
        reason
    );
    let stored = fixture.stored_bytes().await;
    assert!(!stored.is_empty());
    for canary in [purpose, reason, outcome] {
        assert!(!contains(&stored, canary), "{canary} stored in the clear");
    }
}

async fn erasing_the_person_leaves_their_referral_texts_unreadable(fixture: Fixture) {
    let person = Uuid::new_v4();
    let screening = Uuid::new_v4();
    let other_screening = Uuid::new_v4();
    let payload = |person: Uuid| format!("{{\"person_id\":\"{person}\",\"is_minor\":false}}");
    fixture
        .apply(1, "screening.created", screening, payload(person))
        .await;
    fixture
        .apply(
            2,
            "screening.created",
            other_screening,
            payload(Uuid::new_v4()),
        )
        .await;
    let referral = fixture.refer(screening, "hiding from her employer").await;
    let accepted = fixture
        .move_to(
            fixture.receiver,
            &referral,
            ReferralStatus::Accepted,
            "",
            "",
        )
        .await;
    let other = fixture.refer(other_screening, "legal counselling").await;
    fixture
        .apply(
            3,
            "person.erased",
            person,
            format!("{{\"person_id\":\"{person}\"}}"),
        )
        .await;
    for organization in [fixture.sender, fixture.receiver] {
        let erased = fixture.read(organization, referral.id).await;
        assert_eq!(erased.purpose, "");
        assert_eq!(erased.status, ReferralStatus::Accepted);
        assert_eq!(
            fixture.read(organization, other.id).await.purpose,
            "legal counselling"
        );
    }
    // The workflow goes on (the place is released), but keeps no new text.
    let cancelled = fixture
        .move_to(
            fixture.sender,
            &accepted,
            ReferralStatus::Cancelled,
            "the person left the programme",
            "",
        )
        .await;
    assert_eq!(cancelled.status, ReferralStatus::Cancelled);
    assert_eq!(cancelled.status_reason, "");
    assert!(!cancelled.capacity_reserved);
    let listed = fixture.list(fixture.receiver).await;
    let erased = listed.iter().find(|found| found.id == referral.id).unwrap();
    assert_eq!(
        (erased.purpose.as_str(), erased.status_reason.as_str()),
        ("", "")
    );
}

async fn earlier_plaintext_referrals_are_encrypted_once_at_start_up(fixture: Fixture) {
    let referral = fixture.refer(Uuid::new_v4(), "placeholder").await;
    // A row as written before texts were encrypted: plaintext and no key.
    let legacy = "canary-legacy-3e8f1a";
    let sql =
        "UPDATE referrals SET purpose = $2, status_reason = $3, data_key = NULL WHERE id = $1";
    match &fixture.database {
        Database::Sqlite(pool) => sqlx::query(sql)
            .bind(referral.id)
            .bind(legacy.as_bytes())
            .bind(b"declined earlier".as_slice())
            .execute(pool)
            .await
            .map(drop),
        Database::Postgres(pool) => sqlx::query(sql)
            .bind(referral.id)
            .bind(legacy.as_bytes())
            .bind(b"declined earlier".as_slice())
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap();
    assert_eq!(fixture.store.encrypt_legacy_texts().await.unwrap(), 1);
    assert_eq!(fixture.store.encrypt_legacy_texts().await.unwrap(), 0);
    let read = fixture.read(fixture.receiver, referral.id).await;
    assert_eq!(read.purpose, legacy);
    assert_eq!(read.status_reason, "declined earlier");
    if let Database::Postgres(pool) = &fixture.database {
        let (purpose,): (Vec<u8>,) = sqlx::query_as("SELECT purpose FROM referrals WHERE id = $1")
            .bind(referral.id)
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(!contains(&purpose, legacy));
    }
}

async fn events_read_again_after_the_upgrade_only_teach_whose_screening_it_is(fixture: Fixture) {
    // Applied before the upgrade, up to sequence 2: a withdrawal there is not
    // applied twice, but the screening's person is learnt and erasure still finds it.
    let sql = "INSERT INTO feed_replays (source, until) VALUES ('intake', 2)";
    match &fixture.database {
        Database::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Database::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap();
    let person = Uuid::new_v4();
    let screening = Uuid::new_v4();
    let referral = fixture.refer(screening, "a job-skills course").await;
    fixture
        .apply(
            1,
            "screening.created",
            screening,
            format!("{{\"person_id\":\"{person}\"}}"),
        )
        .await;
    fixture
        .apply(
            2,
            "screening.consent_recorded",
            screening,
            "{\"purpose\":\"data_sharing\",\"given\":false}".into(),
        )
        .await;
    let read = fixture.read(fixture.sender, referral.id).await;
    assert_eq!(read.status, ReferralStatus::Requested);
    fixture
        .apply(
            3,
            "person.erased",
            person,
            format!("{{\"person_id\":\"{person}\"}}"),
        )
        .await;
    assert_eq!(fixture.read(fixture.sender, referral.id).await.purpose, "");
}

async fn referral_texts_survive_a_master_key_rotation_and_retirement(fixture: Fixture) {
    let referral = fixture.refer(Uuid::new_v4(), "medical check-up").await;
    let path = haven_auth::keys::keys_dir(&fixture.data_dir).join(MASTER_KEYRING_FILE);
    let mut keyring = MasterKeyring::load(&path).unwrap();
    let active = keyring.rotate().unwrap();
    keyring.save(&path).unwrap();
    let reopen = || {
        store::open(
            fixture.database.clone(),
            EventSignal::default(),
            ReferralCrypto::load(&haven_auth::keys::keys_dir(&fixture.data_dir)).unwrap(),
        )
    };
    assert_eq!(reopen().rewrap_keys().await.unwrap(), 1);
    let mut keyring = MasterKeyring::load(&path).unwrap();
    keyring.retire(active - 1).unwrap();
    keyring.save(&path).unwrap();
    let read = reopen()
        .get_referral(
            &staff(fixture.receiver),
            Scope::Organization(fixture.receiver),
            referral.id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.purpose, "medical check-up");
}

haven_storage::backend_suite! {
    setup = setup;
    referral_texts_survive_a_master_key_rotation_and_retirement,
    both_organisations_read_the_texts_and_every_read_is_audited,
    a_request_and_a_move_return_their_texts_under_their_own_entry,
    the_stored_bytes_never_hold_the_texts_in_clear,
    erasing_the_person_leaves_their_referral_texts_unreadable,
    earlier_plaintext_referrals_are_encrypted_once_at_start_up,
    events_read_again_after_the_upgrade_only_teach_whose_screening_it_is,
}
