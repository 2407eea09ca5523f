//! Behaviour of screening storage, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::Scope;
use haven_auth::{Principal, PrincipalKind, Role};
use haven_config::Settings;
use haven_events::EventSignal;
use haven_intake::assessment::{Answer, AssessmentParts, Exploitation, IndicatorAnswers, Risk};
use haven_intake::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
};
use haven_intake::persons::{Gender, PersonCrypto, PersonDetails};
use haven_intake::store::{
    self, IdempotencyKey, NewConsent, NewDecision, NewScreening, Reach, ScreeningFilter,
    ScreeningStore,
};
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn ScreeningStore>,
    database: Database,
    keys_dir: std::path::PathBuf,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_intake::connect(settings).await.unwrap();
    let keys_dir = settings.data_dir.join("keys");
    let crypto = PersonCrypto::load(&keys_dir).unwrap();
    Fixture {
        store: store::open(database.clone(), EventSignal::default(), crypto, "AZ"),
        database,
        keys_dir,
    }
}

fn officer(organization_id: Uuid) -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: "officer-1".into(),
            organization_id,
            roles: vec![Role::IntakeOfficer],
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "req-1".into(),
        on_behalf_of: None,
    }
}

/// An officer of the organisation `scope` covers (any, for the service-wide reach).
fn acting(scope: Reach) -> AuditContext {
    officer(scope.organization().unwrap_or_default())
}

fn person(given: &str, family: &str, birth_year: i32) -> PersonDetails {
    PersonDetails {
        given_name: given.into(),
        family_name: family.into(),
        birth_year: Some(birth_year),
        gender: Some(Gender::Female),
        citizenships: vec!["az".into()],
        phone: "+994 50 555 12 34".into(),
        address: "Nizami street 5, Ganja".into(),
        ..PersonDetails::default()
    }
}

async fn create(
    fixture: &Fixture,
    organization: Uuid,
    details: Option<PersonDetails>,
) -> haven_intake::domain::Screening {
    fixture
        .store
        .create_screening(&officer(organization), screening(organization), details)
        .await
        .unwrap()
}

fn screening(organization_id: Uuid) -> NewScreening {
    NewScreening {
        organization_id,
        screened_by: "officer-1".into(),
        referral_source: ReferralSource::Hotline,
        screened_at: OffsetDateTime::now_utc(),
        settlement: "Ganja".into(),
        language: "az".into(),
        interpreter_used: false,
        is_minor: false,
        assessment: AssessmentParts::default(),
        coordinates: Some((40.6828, 46.3606)),
        guardian: None,
    }
}

fn consent(purpose: ConsentPurpose, given: bool) -> NewConsent {
    NewConsent {
        purpose,
        given,
        method: ConsentMethod::Written,
        recorded_by: "officer-1".into(),
        by_guardian: false,
        organization_types: vec![],
        once: None,
    }
}

fn decision(stage: IdentificationStage) -> NewDecision {
    NewDecision {
        stage,
        deciding_organization_type: DecidingOrganizationType::Police,
        legal_basis: "Law on Combating Trafficking, art. 17".into(),
        decided_at: OffsetDateTime::now_utc(),
        reasons: String::new(),
        recorded_by: "officer-1".into(),
        deciding_organization_id: None,
        once: None,
    }
}

async fn event_types(database: &Database) -> Vec<String> {
    haven_events::feed::events_after(database, "intake", 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event_type)
        .collect()
}

async fn a_screening_is_only_visible_to_its_organization(fixture: Fixture) {
    let mine = Uuid::new_v4();
    let created = fixture
        .store
        .create_screening(&officer(mine), screening(mine), None)
        .await
        .unwrap();
    assert_eq!(created.stage, IdentificationStage::Screened);
    assert_eq!(created.version, 1);
    let found = fixture
        .store
        .get_screening(
            &officer(mine),
            Reach::from(Scope::Organization(mine)),
            created.id,
        )
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&created));
    let other = Reach::from(Scope::Organization(Uuid::new_v4()));
    assert!(
        fixture
            .store
            .get_screening(&officer(mine), other, created.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fixture
            .store
            .list_screenings(&officer(mine), other, &ScreeningFilter::default(), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let withheld = fixture
        .store
        .record_consent(
            &acting(other),
            other,
            created.id,
            consent(ConsentPurpose::Assistance, true),
        )
        .await;
    assert!(
        withheld.unwrap().is_none(),
        "another organisation cannot write either"
    );
    assert_eq!(
        event_types(&fixture.database).await,
        vec!["screening.created"]
    );
}

async fn consent_history_keeps_withdrawals(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = fixture
        .store
        .create_screening(&officer(organization), screening(organization), None)
        .await
        .unwrap();
    fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, true),
        )
        .await
        .unwrap();
    let withdrawn = fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, false),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        withdrawn.consents.len(),
        2,
        "history kept, never overwritten"
    );
    assert_eq!(
        withdrawn.consent_for(ConsentPurpose::Assistance),
        Some(false)
    );
    assert_eq!(withdrawn.consent_for(ConsentPurpose::Reporting), None);
    assert_eq!(withdrawn.version, 3);
}

async fn an_identified_consenting_person_awaits_a_case_until_linked(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = fixture
        .store
        .create_screening(&officer(organization), screening(organization), None)
        .await
        .unwrap();
    let identified = fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            created.id,
            decision(IdentificationStage::Identified),
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identified.stage, IdentificationStage::Identified);
    assert!(!identified.needs_case(false), "no consent yet");
    assert!(
        fixture
            .store
            .awaiting_case(50, false)
            .await
            .unwrap()
            .is_empty()
    );

    let consenting = fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, true),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(consenting.needs_case(false));
    let waiting = fixture.store.awaiting_case(50, false).await.unwrap();
    assert_eq!(
        waiting.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![created.id]
    );

    let case_id = Uuid::new_v4();
    let linked = fixture.store.link_case(created.id, case_id).await.unwrap();
    assert_eq!(linked.case_id, Some(case_id));
    let relinked = fixture
        .store
        .link_case(created.id, Uuid::new_v4())
        .await
        .unwrap();
    assert_eq!(
        relinked.case_id,
        Some(case_id),
        "the first case stays linked"
    );
    assert!(
        fixture
            .store
            .awaiting_case(50, false)
            .await
            .unwrap()
            .is_empty()
    );
    let types = event_types(&fixture.database).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "screening.case_opened")
            .count(),
        1
    );
}

async fn a_withdrawn_consent_stops_case_opening(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = fixture
        .store
        .create_screening(&officer(organization), screening(organization), None)
        .await
        .unwrap();
    fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, true),
        )
        .await
        .unwrap();
    fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, false),
        )
        .await
        .unwrap();
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            created.id,
            decision(IdentificationStage::Identified),
            &[],
        )
        .await
        .unwrap();
    assert!(
        fixture
            .store
            .awaiting_case(50, false)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn decisions_are_history_and_set_the_stage(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = fixture
        .store
        .create_screening(&officer(organization), screening(organization), None)
        .await
        .unwrap();
    for stage in [
        IdentificationStage::PresumedVictim,
        IdentificationStage::ReasonableGroundsPositive,
        IdentificationStage::Identified,
    ] {
        fixture
            .store
            .record_decision(&acting(scope), scope, created.id, decision(stage), &[])
            .await
            .unwrap();
    }
    let current = fixture
        .store
        .get_screening(&officer(organization), scope, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.stage, IdentificationStage::Identified);
    assert_eq!(
        current
            .decisions
            .iter()
            .map(|d| d.stage)
            .collect::<Vec<_>>(),
        vec![
            IdentificationStage::PresumedVictim,
            IdentificationStage::ReasonableGroundsPositive,
            IdentificationStage::Identified
        ]
    );
    let types = event_types(&fixture.database).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "screening.decision_recorded")
            .count(),
        3
    );
}

/// Every byte the database holds: SQLite files (with the WAL), or every table's rows
/// as text on Postgres.
async fn raw_contents(fixture: &Fixture) -> Vec<u8> {
    match &fixture.database {
        Database::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .execute(pool)
                .await
                .unwrap();
            let dir = fixture.keys_dir.parent().unwrap();
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    bytes.extend(std::fs::read(path).unwrap());
                }
            }
            bytes
        }
        Database::Postgres(pool) => {
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut bytes = Vec::new();
            for (table,) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{table}\" t"
                )))
                .fetch_all(pool)
                .await
                .unwrap();
                for (row,) in rows {
                    bytes.extend(row.into_bytes());
                }
            }
            bytes
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn personal_data_is_stored_only_encrypted_and_every_read_is_audited(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let canary = format!("Canaryname{}", &Uuid::new_v4().simple().to_string()[..8]);
    let details = person(&canary, "Məmmədova", 1994);
    let screening = create(&fixture, organization, Some(details.clone())).await;
    let person_id = screening.person_id.unwrap();
    assert!(
        screening
            .person_code
            .as_deref()
            .unwrap()
            .starts_with("AZP-")
    );

    let scope = Reach::from(Scope::Organization(organization));
    let read = fixture
        .store
        .get_person(&officer(organization), scope, person_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.details.as_ref(), Some(&details));
    let foreign = Uuid::new_v4();
    assert!(
        fixture
            .store
            .get_person(
                &officer(foreign),
                Reach::from(Scope::Organization(foreign)),
                person_id
            )
            .await
            .unwrap()
            .is_none()
    );

    let reasons = format!("{canary} was held by her employer");
    let with_reasons = NewDecision {
        reasons: reasons.clone(),
        ..decision(IdentificationStage::PresumedVictim)
    };
    let decided = fixture
        .store
        .record_decision(&acting(scope), scope, screening.id, with_reasons, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decided.decisions[0].reasons, reasons,
        "the reasons read back"
    );
    let guardian_name = format!("Guardian{canary}");
    let mut minor = crate::screening(organization);
    minor.is_minor = true;
    minor.guardian = Some(haven_intake::domain::Guardian {
        name: guardian_name.clone(),
        relationship: "parent".into(),
        contact: "+994 12 000 00 00".into(),
    });
    let minor = fixture
        .store
        .create_screening(&officer(organization), minor, None)
        .await
        .unwrap();
    assert_eq!(
        minor.guardian.as_ref().unwrap().name,
        guardian_name,
        "the guardian reads back"
    );
    assert_eq!(minor.coordinates, Some((40.6828, 46.3606)));
    let raw = raw_contents(&fixture).await;
    assert!(
        !contains(&raw, &guardian_name),
        "the guardian is stored only encrypted"
    );
    assert!(
        contains(&raw, "Ganja"),
        "the dump sees what is stored in the clear"
    );
    for secret in [
        canary.as_str(),
        "Məmmədova",
        "+994 50 555 12 34",
        "Nizami street",
    ] {
        assert!(
            !contains(&raw, secret),
            "{secret} is in the database in the clear"
        );
    }
    let access = fixture
        .store
        .person_access(scope, person_id, 0, 100)
        .await
        .unwrap()
        .unwrap();
    let actions: Vec<&str> = access.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(actions, vec!["person.create", "person.read"]);
    assert!(
        access
            .iter()
            .all(|entry| entry.actor == "officer-1" && entry.request_id == "req-1")
    );
    assert!(
        haven_audit::verify(&fixture.database)
            .await
            .unwrap()
            .is_ok()
    );
}

async fn duplicates_match_across_scripts_and_spellings_only_in_scope(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let first = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;
    let latin = create(
        &fixture,
        organization,
        Some(person("Aynur", "Mammadova", 1994)),
    )
    .await;
    let cyrillic = create(
        &fixture,
        organization,
        Some(person("Айнур", "Мамедова", 1994)),
    )
    .await;
    let other_year = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1980)),
    )
    .await;
    let different = create(
        &fixture,
        organization,
        Some(person("Gülnar", "Hüseynova", 1994)),
    )
    .await;
    let elsewhere = Uuid::new_v4();
    create(
        &fixture,
        elsewhere,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;

    let matches = fixture
        .store
        .find_matches(&officer(organization), scope, first.id)
        .await
        .unwrap()
        .unwrap();
    // Another organisation's record shows up as a restricted hint: holder only.
    let (foreign, matches): (Vec<_>, Vec<_>) =
        matches.into_iter().partition(|found| found.restricted);
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0].organization_id, elsewhere);
    assert!(foreign[0].person_code.is_empty() && foreign[0].screening_ids.is_empty());
    let mut found: Vec<Uuid> = matches
        .iter()
        .filter(|found| found.kind == haven_crypto::BlindIndexKind::FullName)
        .map(|found| found.person_id)
        .collect();
    found.sort();
    let mut expected = vec![latin.person_id.unwrap(), cyrillic.person_id.unwrap()];
    expected.sort();
    assert_eq!(found, expected, "same name in three spellings, same year");
    let all: Vec<Uuid> = matches.iter().map(|found| found.person_id).collect();
    assert!(!all.contains(&other_year.person_id.unwrap()));
    assert!(!all.contains(&different.person_id.unwrap()));
    assert_eq!(matches[0].screening_ids.len(), 1);
}

async fn erasure_shreds_the_key_and_leaves_only_the_code(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let erased = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;
    let twin = create(
        &fixture,
        organization,
        Some(person("Aynur", "Mammadova", 1994)),
    )
    .await;
    let person_id = erased.person_id.unwrap();
    let with_reasons = NewDecision {
        reasons: "told of threats by the recruiter".into(),
        ..decision(IdentificationStage::PresumedVictim)
    };
    fixture
        .store
        .record_decision(&acting(scope), scope, erased.id, with_reasons, &[])
        .await
        .unwrap();
    let result = fixture
        .store
        .erase_person(
            &officer(organization),
            scope,
            person_id,
            "request of the data subject, ref 17/2026",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(result.details.is_none());
    assert!(result.erased_at.is_some());
    assert_eq!(
        result.code,
        erased.person_code.clone().unwrap(),
        "the pseudonymous code remains"
    );

    // The ciphertext is still there, but no key can open it any more, not even with the
    // master keyring: the wrapped data key is gone.
    let stored: (Option<Vec<u8>>, Option<Vec<u8>>) = match &fixture.database {
        Database::Sqlite(pool) => {
            sqlx::query_as("SELECT wrapped_key, given_name FROM persons WHERE id = $1")
                .bind(person_id)
                .fetch_one(pool)
                .await
                .unwrap()
        }
        Database::Postgres(pool) => {
            sqlx::query_as("SELECT wrapped_key, given_name FROM persons WHERE id = $1")
                .bind(person_id)
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    assert!(stored.0.is_none(), "wrapped key destroyed");
    let ciphertext = stored.1.expect("ciphertext left behind");
    let keyring =
        haven_crypto::MasterKeyring::load(&fixture.keys_dir.join("master-keys.json")).unwrap();
    let context = haven_crypto::FieldContext::new("persons", "given_name", person_id.as_bytes());
    // An attacker's guesses: raw keys, which only a test outside the services holds.
    #[allow(clippy::disallowed_methods)]
    for _ in 0..3 {
        use haven_crypto::KeyWrapper as _;
        let (guess, _) = keyring.generate_data_key(person_id.as_bytes()).unwrap();
        assert!(haven_crypto::decrypt_str(&guess, &ciphertext, &context).is_err());
    }
    let reread = fixture
        .store
        .get_person(&officer(organization), scope, person_id)
        .await
        .unwrap()
        .unwrap();
    assert!(reread.details.is_none());
    let screening = fixture
        .store
        .get_screening(&officer(organization), scope, erased.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        screening.decisions[0].reasons, "",
        "narratives about the person are shredded too"
    );
    // The blind index no longer finds the erased person.
    let matches = fixture
        .store
        .find_matches(&officer(organization), scope, twin.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches.iter().all(|found| found.person_id != person_id));
    let events = haven_events::feed::events_after(&fixture.database, "intake", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == "person.erased")
            .count(),
        1
    );
}

async fn rotating_the_master_key_rewraps_every_person(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = create(
        &fixture,
        organization,
        Some(person("Rəşid", "Cəfərov", 1988)),
    )
    .await;
    let path = fixture.keys_dir.join("master-keys.json");
    let mut keyring = haven_crypto::MasterKeyring::load(&path).unwrap();
    let old = {
        use haven_crypto::KeyWrapper as _;
        keyring.active_version()
    };
    keyring.rotate().unwrap();
    keyring.save(&path).unwrap();
    let store = store::open(
        fixture.database.clone(),
        EventSignal::default(),
        PersonCrypto::load(&fixture.keys_dir).unwrap(),
        "AZ",
    );
    // The person's key and the screening's key (it seals decision reasons).
    assert_eq!(store.rewrap_person_keys().await.unwrap(), 2);
    assert_eq!(
        store.rewrap_person_keys().await.unwrap(),
        0,
        "already on the active version"
    );
    keyring.retire(old).unwrap();
    keyring.save(&path).unwrap();
    let store = store::open(
        fixture.database.clone(),
        EventSignal::default(),
        PersonCrypto::load(&fixture.keys_dir).unwrap(),
        "AZ",
    );
    let person = store
        .get_person(&officer(organization), scope, created.person_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.details.unwrap().family_name, "Cəfərov");
}

/// Makes every audit write fail, as a full disk or a broken trail would.
async fn break_the_audit_trail(database: &Database) {
    match database {
        Database::Sqlite(pool) => {
            sqlx::query("CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit trail unavailable'); END")
                .execute(pool)
                .await
                .unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::query("CREATE FUNCTION audit_log_broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit trail unavailable'; END $$")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query("CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_broken()")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn count(database: &Database, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
    let (count,): (i64,) = match database {
        Database::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
    };
    count
}

async fn when_the_audit_write_fails_the_request_fails_and_nothing_is_stored(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let kept = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;
    let before = [
        count(&fixture.database, "screenings").await,
        count(&fixture.database, "persons").await,
    ];
    break_the_audit_trail(&fixture.database).await;

    let refused = fixture
        .store
        .create_screening(
            &officer(organization),
            screening(organization),
            Some(person("Rəşid", "Cəfərov", 1988)),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), haven_error::ErrorCode::Internal);
    let after = [
        count(&fixture.database, "screenings").await,
        count(&fixture.database, "persons").await,
    ];
    assert_eq!(before, after, "no screening or person half-written");
    assert!(
        fixture
            .store
            .get_person(&officer(organization), scope, kept.person_id.unwrap())
            .await
            .is_err(),
        "no unaudited read"
    );
    assert!(
        fixture
            .store
            .get_screening(&officer(organization), scope, kept.id)
            .await
            .is_err(),
        "no unaudited screening read"
    );
    assert!(
        fixture
            .store
            .list_screenings(
                &officer(organization),
                scope,
                &ScreeningFilter::default(),
                None,
                50
            )
            .await
            .is_err(),
        "no unaudited screening list"
    );
    let events = haven_events::feed::events_after(&fixture.database, "intake", 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "no event for the refused write");
}

fn decided_hours_ago(stage: IdentificationStage, hours: i64) -> NewDecision {
    NewDecision {
        decided_at: OffsetDateTime::now_utc() - time::Duration::hours(hours),
        ..decision(stage)
    }
}

async fn decisions_start_statutory_clocks_that_fall_due(fixture: Fixture) {
    use haven_intake::clocks::ClockState;
    use haven_intake::store::ClockFilter;
    let rules = haven_config::default_clocks();
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let late = create(&fixture, organization, None).await;
    let fresh = create(&fixture, organization, None).await;
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            late.id,
            decided_hours_ago(IdentificationStage::PresumedVictim, 30),
            &rules,
        )
        .await
        .unwrap();
    // A corrected decision at the same stage does not start a second clock.
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            late.id,
            decided_hours_ago(IdentificationStage::PresumedVictim, 29),
            &rules,
        )
        .await
        .unwrap();
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            fresh.id,
            decided_hours_ago(IdentificationStage::PresumedVictim, 2),
            &rules,
        )
        .await
        .unwrap();
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            fresh.id,
            decided_hours_ago(IdentificationStage::ReasonableGroundsPositive, 1),
            &rules,
        )
        .await
        .unwrap();

    let now = OffsetDateTime::now_utc();
    let filter = |state| ClockFilter {
        state,
        now,
        window: time::Duration::hours(24),
    };
    let open = fixture
        .store
        .list_clocks(scope, &filter(None), None, 50)
        .await
        .unwrap();
    assert_eq!(open.len(), 3);
    assert!(
        open.windows(2).all(|pair| pair[0].due_at <= pair[1].due_at),
        "soonest due first"
    );
    let overdue = fixture
        .store
        .list_clocks(scope, &filter(Some(ClockState::Overdue)), None, 50)
        .await
        .unwrap();
    assert_eq!(
        overdue
            .iter()
            .map(|c| (c.screening_id, c.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(late.id, "police_referral")]
    );
    let due_soon = fixture
        .store
        .list_clocks(scope, &filter(Some(ClockState::DueSoon)), None, 50)
        .await
        .unwrap();
    assert_eq!(
        due_soon
            .iter()
            .map(|c| (c.screening_id, c.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(fresh.id, "police_referral")]
    );
    let later = fixture
        .store
        .list_clocks(scope, &filter(Some(ClockState::Open)), None, 50)
        .await
        .unwrap();
    assert_eq!(later[0].name, "reflection_period_review");
    assert_eq!(
        later[0].due_at - later[0].started_at,
        time::Duration::days(30)
    );

    let foreign = Reach::from(Scope::Organization(Uuid::new_v4()));
    assert!(
        fixture
            .store
            .list_clocks(foreign, &filter(None), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        fixture
            .store
            .complete_clock(foreign, overdue[0].id, "stranger")
            .await
            .unwrap()
            .is_none()
    );
    let done = fixture
        .store
        .complete_clock(scope, overdue[0].id, "officer-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.state(now, time::Duration::hours(24)),
        ClockState::Completed
    );
    assert!(
        fixture
            .store
            .list_clocks(scope, &filter(Some(ClockState::Overdue)), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let first_page = fixture
        .store
        .list_clocks(scope, &filter(None), None, 1)
        .await
        .unwrap();
    let cursor = first_page
        .last()
        .map(|clock| (clock.due_at, clock.position));
    let second_page = fixture
        .store
        .list_clocks(scope, &filter(None), cursor, 10)
        .await
        .unwrap();
    assert_eq!(first_page.len() + second_page.len(), 2);
    assert_ne!(first_page[0].id, second_page[0].id);
}

async fn a_deployment_may_open_cases_for_presumed_victims(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = create(&fixture, organization, None).await;
    fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, true),
        )
        .await
        .unwrap();
    let presumed = fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            created.id,
            decision(IdentificationStage::PresumedVictim),
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!presumed.needs_case(false));
    assert!(presumed.needs_case(true));
    assert!(
        fixture
            .store
            .awaiting_case(50, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        fixture.store.awaiting_case(50, true).await.unwrap().len(),
        1
    );
}

async fn indicator_sets_are_versioned_data_and_screenings_keep_theirs(fixture: Fixture) {
    fixture.store.ensure_default_indicator_set().await.unwrap();
    fixture.store.ensure_default_indicator_set().await.unwrap();
    let first = fixture
        .store
        .get_indicator_set(None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.version, 1);
    assert!(first.definition.has("document_retention"));

    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let mut new = screening(organization);
    new.assessment = AssessmentParts {
        indicators: Some(IndicatorAnswers {
            version: 1,
            answers: vec![("document_retention".into(), Answer::Yes)],
            notes: [(
                "document_retention".to_owned(),
                "her passport was taken on arrival".to_owned(),
            )]
            .into(),
        }),
        exploitation: Some(Exploitation {
            types: vec!["forced_labour".into()],
            countries_of_exploitation: vec!["RU".into()],
            ..Exploitation::default()
        }),
        risk: Some(Risk {
            level: "high".into(),
            factors: vec![],
            immediate_needs: vec!["shelter".into()],
        }),
    };
    let created = fixture
        .store
        .create_screening(&officer(organization), new.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        created.assessment, new.assessment,
        "answers, notes, exploitation and risk read back"
    );
    assert!(
        !contains(&raw_contents(&fixture).await, "passport was taken"),
        "notes are stored only encrypted"
    );

    let mut second = first.definition.clone();
    second.name = "Revised indicators".into();
    second.groups[0]
        .indicators
        .retain(|indicator| indicator.code != "isolation");
    let published = fixture
        .store
        .publish_indicator_set(second, "admin-1", None)
        .await
        .map(|created| created.record)
        .unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(
        fixture
            .store
            .get_indicator_set(None)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        fixture
            .store
            .get_indicator_set(Some(1))
            .await
            .unwrap()
            .unwrap()
            .definition,
        first.definition
    );
    assert_eq!(fixture.store.list_indicator_sets().await.unwrap().len(), 2);
    let reread = fixture
        .store
        .get_screening(&officer(organization), scope, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reread.assessment.indicators.unwrap().version,
        1,
        "old screenings keep their version"
    );
}

async fn updates_need_the_current_version(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = create(&fixture, organization, None).await;
    let risk = AssessmentParts {
        risk: Some(Risk {
            level: "medium".into(),
            factors: vec!["threats_to_family".into()],
            immediate_needs: vec![],
        }),
        ..AssessmentParts::default()
    };
    let updated = fixture
        .store
        .update_screening(
            &acting(scope),
            scope,
            created.id,
            created.version,
            risk.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.version, created.version + 1);
    assert_eq!(updated.assessment.risk, risk.risk);
    // A second writer who read the old version loses: nothing of theirs is stored.
    let stale = AssessmentParts {
        risk: Some(Risk {
            level: "low".into(),
            factors: vec![],
            immediate_needs: vec![],
        }),
        ..AssessmentParts::default()
    };
    let refused = fixture
        .store
        .update_screening(&acting(scope), scope, created.id, created.version, stale)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), haven_error::ErrorCode::PreconditionFailed);
    let current = fixture
        .store
        .get_screening(&officer(organization), scope, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.assessment.risk, risk.risk);
    let foreign = Reach::from(Scope::Organization(Uuid::new_v4()));
    assert!(
        fixture
            .store
            .update_screening(&acting(foreign), foreign, created.id, current.version, risk)
            .await
            .unwrap()
            .is_none()
    );
}

async fn lists_filter_by_stage_source_period_and_overdue_clock(fixture: Fixture) {
    let rules = haven_config::default_clocks();
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let hotline = create(&fixture, organization, None).await;
    let mut police = screening(organization);
    police.referral_source = ReferralSource::Police;
    police.screened_at = OffsetDateTime::now_utc() - time::Duration::days(40);
    let police = fixture
        .store
        .create_screening(&officer(organization), police, None)
        .await
        .unwrap();
    fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            hotline.id,
            decided_hours_ago(IdentificationStage::PresumedVictim, 48),
            &rules,
        )
        .await
        .unwrap();

    let ids = |screenings: Vec<haven_intake::domain::Screening>| {
        screenings.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    let list = |filter: ScreeningFilter| {
        let store = fixture.store.clone();
        async move {
            store
                .list_screenings(&officer(organization), scope, &filter, None, 50)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        ids(list(ScreeningFilter::default()).await),
        vec![hotline.id, police.id]
    );
    let presumed = ScreeningFilter {
        stage: Some(IdentificationStage::PresumedVictim),
        ..ScreeningFilter::default()
    };
    assert_eq!(ids(list(presumed).await), vec![hotline.id]);
    let by_police = ScreeningFilter {
        referral_source: Some(ReferralSource::Police),
        ..ScreeningFilter::default()
    };
    assert_eq!(ids(list(by_police).await), vec![police.id]);
    let recent = ScreeningFilter {
        screened_from: Some(OffsetDateTime::now_utc() - time::Duration::days(7)),
        ..ScreeningFilter::default()
    };
    assert_eq!(ids(list(recent).await), vec![hotline.id]);
    let overdue = ScreeningFilter {
        overdue_clock_at: Some(OffsetDateTime::now_utc()),
        ..ScreeningFilter::default()
    };
    assert_eq!(ids(list(overdue).await), vec![hotline.id]);
}

async fn a_confirmed_match_marks_re_trafficking(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let earlier = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;
    let again = create(
        &fixture,
        organization,
        Some(person("Айнур", "Мамедова", 1994)),
    )
    .await;
    let matches = fixture
        .store
        .find_matches(&officer(organization), scope, again.id)
        .await
        .unwrap()
        .unwrap();
    let earlier_person = earlier.person_id.unwrap();
    assert_eq!(matches[0].person_id, earlier_person);
    let confirmed = fixture
        .store
        .confirm_match(&officer(organization), scope, again.id, earlier_person)
        .await
        .unwrap()
        .unwrap();
    assert!(confirmed.re_trafficked);
    let twice = fixture
        .store
        .confirm_match(&officer(organization), scope, again.id, earlier_person)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        twice.version, confirmed.version,
        "confirming again changes nothing"
    );
    let events = haven_events::feed::events_after(&fixture.database, "intake", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "screening.re_trafficking_confirmed")
            .count(),
        1
    );
    let foreign = Uuid::new_v4();
    let outsider = create(&fixture, foreign, Some(person("Aynur", "Mammadova", 1994))).await;
    let refused = fixture
        .store
        .confirm_match(
            &officer(organization),
            scope,
            again.id,
            outsider.person_id.unwrap(),
        )
        .await
        .unwrap();
    assert!(
        refused.is_none(),
        "another organisation's person cannot be linked from here"
    );
}

async fn an_idempotency_key_creates_one_screening_however_often_it_is_retried(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let once = |hash: &[u8]| IdempotencyKey {
        key: "retry-7".into(),
        request_hash: hash.to_vec(),
    };
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let store = fixture.store.clone();
            let new = screening(organization);
            let key = once(b"same request");
            tokio::spawn(async move {
                store
                    .create_screening_once(&officer(organization), new, None, Some(key))
                    .await
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for attempt in attempts {
        let (created, replayed) = attempt.await.unwrap().unwrap();
        ids.insert(created.id);
        fresh += usize::from(!replayed);
    }
    assert_eq!(ids.len(), 1, "one screening");
    assert_eq!(fresh, 1, "created once, replayed otherwise");
    let scope = Reach::from(Scope::Organization(organization));
    assert_eq!(
        fixture
            .store
            .list_screenings(
                &officer(organization),
                scope,
                &ScreeningFilter::default(),
                None,
                50
            )
            .await
            .unwrap()
            .len(),
        1
    );
    let other = fixture
        .store
        .create_screening_once(
            &officer(organization),
            screening(organization),
            None,
            Some(once(b"another request")),
        )
        .await
        .unwrap_err();
    assert_eq!(other.code(), haven_error::ErrorCode::Unprocessable);
    // Keys are per organisation.
    let elsewhere = Uuid::new_v4();
    let (theirs, replayed) = fixture
        .store
        .create_screening_once(
            &officer(elsewhere),
            screening(elsewhere),
            None,
            Some(once(b"same request")),
        )
        .await
        .unwrap();
    assert!(!replayed && !ids.contains(&theirs.id));
}

async fn retried_consents_and_decisions_are_recorded_once(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = create(&fixture, organization, None).await;
    let key = |hash: &[u8]| {
        Some(IdempotencyKey {
            key: "consent-1".into(),
            request_hash: hash.to_vec(),
        })
    };
    for _ in 0..3 {
        let once = NewConsent {
            once: key(b"consent"),
            ..consent(ConsentPurpose::Assistance, true)
        };
        fixture
            .store
            .record_consent(&acting(scope), scope, created.id, once)
            .await
            .unwrap()
            .unwrap();
    }
    let reused = NewConsent {
        once: key(b"another"),
        ..consent(ConsentPurpose::Reporting, true)
    };
    let refused = fixture
        .store
        .record_consent(&acting(scope), scope, created.id, reused)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), haven_error::ErrorCode::Unprocessable);
    let police = Uuid::new_v4();
    let decision_key = Some(IdempotencyKey {
        key: "decision-1".into(),
        request_hash: b"decision".to_vec(),
    });
    for _ in 0..2 {
        let once = NewDecision {
            once: decision_key.clone(),
            deciding_organization_id: Some(police),
            ..decision(IdentificationStage::PresumedVictim)
        };
        fixture
            .store
            .record_decision(&acting(scope), scope, created.id, once, &[])
            .await
            .unwrap()
            .unwrap();
    }
    let current = fixture
        .store
        .get_screening(&officer(organization), scope, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        current.consents.len(),
        1,
        "one consent however often it was retried"
    );
    assert_eq!(current.decisions.len(), 1);
    assert_eq!(current.decisions[0].deciding_organization_id, Some(police));
}

async fn screening_reads_are_audited_naming_the_reader(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let first = create(&fixture, organization, None).await;
    let second = create(&fixture, organization, None).await;
    let reader = AuditContext {
        principal: Principal {
            subject: "reader-7".into(),
            ..officer(organization).principal
        },
        purpose: "assistance".into(),
        request_id: "req-read".into(),
        on_behalf_of: None,
    };
    fixture
        .store
        .get_screening(&reader, scope, first.id)
        .await
        .unwrap()
        .unwrap();
    let listed = fixture
        .store
        .list_screenings(&reader, scope, &ScreeningFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let reads = |id: Uuid| {
        let database = fixture.database.clone();
        async move {
            haven_audit::entries_for_record(&database, "screening", id, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|entry| entry.action == "screening.read")
                .map(|entry| (entry.actor, entry.request_id))
                .collect::<Vec<_>>()
        }
    };
    let by_reader = ("reader-7".to_owned(), "req-read".to_owned());
    assert_eq!(
        reads(first.id).await,
        vec![by_reader.clone(), by_reader.clone()]
    );
    assert_eq!(reads(second.id).await, vec![by_reader]);
    let elsewhere = Reach::from(Scope::Organization(Uuid::new_v4()));
    assert!(
        fixture
            .store
            .list_screenings(&reader, elsewhere, &ScreeningFilter::default(), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reads(second.id).await.len(),
        1,
        "nothing read, nothing recorded"
    );
}

async fn every_write_that_shows_a_screenings_texts_is_audited(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let mut minor = screening(organization);
    minor.is_minor = true;
    minor.guardian = Some(haven_intake::domain::Guardian {
        name: "Guardian Canary".into(),
        relationship: "parent".into(),
        contact: "+994 12 000 00 00".into(),
    });
    let created = fixture
        .store
        .create_screening(&officer(organization), minor, None)
        .await
        .unwrap();
    assert!(
        created.guardian.is_some(),
        "the creator sees what they typed"
    );
    let once = |key: &str| {
        Some(haven_intake::store::IdempotencyKey {
            key: key.into(),
            request_hash: vec![7; 32],
        })
    };
    let consented = fixture
        .store
        .record_consent(
            &acting(scope),
            scope,
            created.id,
            NewConsent {
                once: once("consent-1"),
                ..consent(ConsentPurpose::Assistance, true)
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(consented.guardian.is_some());
    let decided = fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            created.id,
            NewDecision {
                reasons: "held by her employer".into(),
                once: once("decision-1"),
                ..decision(IdentificationStage::Identified)
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decided.decisions[0].reasons, "held by her employer");
    // A retry with the same key shows the screening again: audited as a read.
    let replayed = fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            created.id,
            NewDecision {
                reasons: "held by her employer".into(),
                once: once("decision-1"),
                ..decision(IdentificationStage::Identified)
            },
            &[],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.decisions.len(), 1);
    assert_eq!(replayed.decisions[0].reasons, "held by her employer");

    let actions: Vec<String> =
        haven_audit::entries_for_record(&fixture.database, "screening", created.id, 0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.action)
            .collect();
    assert_eq!(
        actions,
        [
            "screening.create",
            "screening.consent",
            "screening.decide",
            "screening.read"
        ]
    );

    // Internal work (opening a case for the screening) opens none of its texts.
    let waiting = fixture.store.awaiting_case(50, false).await.unwrap();
    let waiting = waiting
        .iter()
        .find(|screening| screening.id == created.id)
        .unwrap();
    assert!(waiting.guardian.is_none());
    assert!(waiting.decisions[0].reasons.is_empty());
    let linked = fixture
        .store
        .link_case(created.id, Uuid::new_v4())
        .await
        .unwrap();
    assert!(linked.guardian.is_none());
    assert!(linked.decisions[0].reasons.is_empty());
}

/// Runs `sql` with `id` and then `texts` bound, on either backend.
async fn execute(database: &Database, sql: &'static str, id: Uuid, texts: &[&str]) {
    match database {
        Database::Sqlite(pool) => {
            let mut query = sqlx::query(sql).bind(id);
            for text in texts {
                query = query.bind(text.to_string());
            }
            query.execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            let mut query = sqlx::query(sql).bind(id);
            for text in texts {
                query = query.bind(text.to_string());
            }
            query.execute(pool).await.unwrap();
        }
    }
}

/// A person's erasure reason in the clear, erasure key and sealed reason, as stored.
type StoredErasure = (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);

async fn stored_erasure(database: &Database, person_id: Uuid) -> StoredErasure {
    let sql =
        "SELECT erasure_reason, erasure_key, erasure_reason_ciphertext FROM persons WHERE id = $1";
    match database {
        Database::Sqlite(pool) => sqlx::query_as(sql).bind(person_id).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_as(sql).bind(person_id).fetch_one(pool).await,
    }
    .unwrap()
}

/// A decision's reasons and legal basis in the clear, then their ciphertexts, as stored.
type StoredDecision = (String, String, Option<Vec<u8>>, Option<Vec<u8>>);

async fn stored_decision(database: &Database, decision_id: Uuid) -> StoredDecision {
    let sql = "SELECT reasons, legal_basis, reasons_ciphertext, legal_basis_ciphertext FROM decisions WHERE id = $1";
    match database {
        Database::Sqlite(pool) => sqlx::query_as(sql).bind(decision_id).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_as(sql).bind(decision_id).fetch_one(pool).await,
    }
    .unwrap()
}

async fn stored_screening_key(database: &Database, screening_id: Uuid) -> Option<Vec<u8>> {
    let sql = "SELECT wrapped_key FROM screenings WHERE id = $1";
    let (wrapped,): (Option<Vec<u8>>,) = match database {
        Database::Sqlite(pool) => sqlx::query_as(sql).bind(screening_id).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_as(sql).bind(screening_id).fetch_one(pool).await,
    }
    .unwrap();
    wrapped
}

/// The erasure reason of `person_id`, opened the audited way.
async fn read_erasure_reason(fixture: &Fixture, context: &AuditContext, person_id: Uuid) -> String {
    use haven_audit::AuditWrite as _;
    let entry = context.entry("person.erasure_reason.read", "person", person_id);
    let receipt = match &fixture.database {
        Database::Sqlite(pool) => {
            let mut connection = pool.acquire().await.unwrap();
            connection.append_audit("intake", &entry).await
        }
        Database::Postgres(pool) => {
            let mut connection = pool.acquire().await.unwrap();
            connection.append_audit("intake", &entry).await
        }
    }
    .unwrap();
    let (_, wrapped, sealed) = stored_erasure(&fixture.database, person_id).await;
    PersonCrypto::load(&fixture.keys_dir)
        .unwrap()
        .open(&receipt, person_id, &wrapped.unwrap())
        .unwrap()
        .open(
            "persons",
            "erasure_reason",
            person_id.as_bytes(),
            &sealed.unwrap(),
        )
        .unwrap()
}

async fn texts_written_in_the_clear_are_encrypted_once(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let erasure_canary = format!("Erasurecanary{tag}");
    let reasons_canary = format!("Reasonscanary{tag}");
    let basis_canary = format!("Basiscanary{tag}");
    let keyless_canary = format!("Keylesscanary{tag}");
    let erased_canary = format!("Erasedcanary{tag}");
    let database = &fixture.database;

    // A person erased before erasure reasons were encrypted; a plain reason of one of
    // their decisions survived that erasure.
    let erased = create(
        &fixture,
        organization,
        Some(person("Aynur", "Məmmədova", 1994)),
    )
    .await;
    let erased_person = erased.person_id.unwrap();
    let erased_decision = fixture
        .store
        .record_decision(
            &acting(scope),
            scope,
            erased.id,
            decision(IdentificationStage::PresumedVictim),
            &[],
        )
        .await
        .unwrap()
        .unwrap()
        .decisions[0]
        .id;
    fixture
        .store
        .erase_person(&officer(organization), scope, erased_person, "stated below")
        .await
        .unwrap()
        .unwrap();
    execute(
        database,
        "UPDATE persons SET erasure_reason = $2, erasure_key = NULL, erasure_reason_ciphertext = NULL WHERE id = $1",
        erased_person,
        &[&erasure_canary],
    )
    .await;
    execute(
        database,
        "UPDATE decisions SET reasons = $2 WHERE id = $1",
        erased_decision,
        &[&erased_canary],
    )
    .await;

    // Decisions recorded before reasons and legal bases were encrypted: one on a
    // screening with a key, one on a screening recorded before screenings had keys.
    let kept = create(
        &fixture,
        organization,
        Some(person("Leyla", "Əliyeva", 1990)),
    )
    .await;
    let keyless = create(&fixture, organization, None).await;
    let mut legacy = Vec::new();
    for (screening, reasons, basis) in [
        (kept.id, &reasons_canary, &basis_canary),
        (keyless.id, &keyless_canary, &basis_canary),
    ] {
        let recorded = NewDecision {
            reasons: "to be replaced".into(),
            ..decision(IdentificationStage::PresumedVictim)
        };
        let decision_id = fixture
            .store
            .record_decision(&acting(scope), scope, screening, recorded, &[])
            .await
            .unwrap()
            .unwrap()
            .decisions[0]
            .id;
        execute(
            database,
            "UPDATE decisions SET reasons = $2, legal_basis = $3, reasons_ciphertext = NULL, \
             legal_basis_ciphertext = NULL WHERE id = $1",
            decision_id,
            &[reasons, basis],
        )
        .await;
        legacy.push(decision_id);
    }
    execute(
        database,
        "UPDATE screenings SET wrapped_key = NULL WHERE id = $1",
        keyless.id,
        &[],
    )
    .await;

    // One erasure reason, two reasons and two legal bases; the erased person's text
    // only goes.
    assert_eq!(fixture.store.encrypt_plaintext_texts().await.unwrap(), 5);
    assert_eq!(
        fixture.store.encrypt_plaintext_texts().await.unwrap(),
        0,
        "once"
    );

    let (plain, key, sealed) = stored_erasure(database, erased_person).await;
    assert!(plain.is_none());
    assert!(key.is_some() && sealed.is_some());
    assert_eq!(
        read_erasure_reason(&fixture, &officer(organization), erased_person).await,
        erasure_canary
    );
    for decision_id in &legacy {
        let (reasons, legal_basis, reasons_sealed, legal_basis_sealed) =
            stored_decision(database, *decision_id).await;
        assert_eq!((reasons.as_str(), legal_basis.as_str()), ("", ""));
        assert!(reasons_sealed.is_some() && legal_basis_sealed.is_some());
    }
    let (reasons, legal_basis, _, _) = stored_decision(database, erased_decision).await;
    assert_eq!((reasons.as_str(), legal_basis.as_str()), ("", ""));
    assert!(
        stored_screening_key(database, erased.id).await.is_none(),
        "no new key for an erased person's texts"
    );
    assert!(stored_screening_key(database, keyless.id).await.is_some());

    // The texts still read, through the audited path.
    for (screening, reasons) in [(kept.id, &reasons_canary), (keyless.id, &keyless_canary)] {
        let read = fixture
            .store
            .get_screening(&officer(organization), scope, screening)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&read.decisions[0].reasons, reasons);
        assert_eq!(read.decisions[0].legal_basis, basis_canary);
    }
    let read = fixture
        .store
        .get_screening(&officer(organization), scope, erased.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.decisions[0].reasons, "");
    assert_eq!(read.decisions[0].legal_basis, "");

    // No plain copy is left in the database (on SQLite: its files and write-ahead log).
    let raw = raw_contents(&fixture).await;
    for canary in [
        &erasure_canary,
        &reasons_canary,
        &basis_canary,
        &keyless_canary,
        &erased_canary,
    ] {
        assert!(!contains(&raw, canary), "{canary} left in the clear");
    }
}

async fn concurrent_retries_of_a_decision_record_it_once_and_all_get_it(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Reach::from(Scope::Organization(organization));
    let created = create(&fixture, organization, None).await;
    let retry = NewDecision {
        reasons: "held by her employer".into(),
        once: Some(haven_intake::store::IdempotencyKey {
            key: "decision-once".into(),
            request_hash: vec![3; 32],
        }),
        ..decision(IdentificationStage::Identified)
    };
    let attempts = (0..10).map(|_| {
        let (store, retry) = (fixture.store.clone(), retry.clone());
        tokio::spawn(async move {
            store
                .record_decision(&acting(scope), scope, created.id, retry, &[])
                .await
        })
    });
    for answer in futures::future::join_all(attempts).await {
        let screening = answer
            .unwrap()
            .expect("a retry is answered, never an error")
            .unwrap();
        assert_eq!(screening.decisions.len(), 1, "one decision, whoever won");
        assert_eq!(screening.decisions[0].reasons, "held by her employer");
    }
    let current = fixture
        .store
        .get_screening(&officer(organization), scope, created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.decisions.len(), 1);
}

/// A publication retried with its idempotency key gets the version it published,
/// and publishes nothing more; the key with another definition is refused.
async fn a_retried_publication_gets_the_version_it_published(fixture: Fixture) {
    use haven_error::ErrorCode;
    use haven_storage::idempotency::CallerKey;

    fixture.store.ensure_default_indicator_set().await.unwrap();
    let first = fixture
        .store
        .get_indicator_set(None)
        .await
        .unwrap()
        .unwrap();
    let organization = Uuid::new_v4();
    let once = |request: &[u8]| {
        let key = IdempotencyKey::from_request(
            "idempotency_key",
            "indicator_set.publish",
            "publish-2027",
            request,
        )
        .unwrap();
        CallerKey::of(organization, "admin-1", key)
    };
    let mut revised = first.definition.clone();
    revised.name = "Revised indicators".into();

    let published = fixture
        .store
        .publish_indicator_set(revised.clone(), "admin-1", once(b"revised").as_ref())
        .await
        .unwrap();
    assert!(!published.replayed);
    assert_eq!(published.record.version, 2);
    let retried = fixture
        .store
        .publish_indicator_set(revised, "admin-1", once(b"revised").as_ref())
        .await
        .unwrap();
    assert!(retried.replayed);
    assert_eq!(retried.record, published.record);
    assert_eq!(
        fixture.store.list_indicator_sets().await.unwrap().len(),
        2,
        "the retry published nothing"
    );

    let mut other = first.definition.clone();
    other.name = "Other indicators".into();
    let refused = fixture
        .store
        .publish_indicator_set(other, "admin-1", once(b"other").as_ref())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Unprocessable);
    assert_eq!(fixture.store.list_indicator_sets().await.unwrap().len(), 2);
}

haven_storage::backend_suite! {
    setup = setup;
    a_screening_is_only_visible_to_its_organization,
    consent_history_keeps_withdrawals,
    an_identified_consenting_person_awaits_a_case_until_linked,
    a_withdrawn_consent_stops_case_opening,
    decisions_are_history_and_set_the_stage,
    personal_data_is_stored_only_encrypted_and_every_read_is_audited,
    duplicates_match_across_scripts_and_spellings_only_in_scope,
    erasure_shreds_the_key_and_leaves_only_the_code,
    rotating_the_master_key_rewraps_every_person,
    when_the_audit_write_fails_the_request_fails_and_nothing_is_stored,
    decisions_start_statutory_clocks_that_fall_due,
    a_deployment_may_open_cases_for_presumed_victims,
    indicator_sets_are_versioned_data_and_screenings_keep_theirs,
    updates_need_the_current_version,
    lists_filter_by_stage_source_period_and_overdue_clock,
    a_confirmed_match_marks_re_trafficking,
    an_idempotency_key_creates_one_screening_however_often_it_is_retried,
    retried_consents_and_decisions_are_recorded_once,
    screening_reads_are_audited_naming_the_reader,
    every_write_that_shows_a_screenings_texts_is_audited,
    concurrent_retries_of_a_decision_record_it_once_and_all_get_it,
    texts_written_in_the_clear_are_encrypted_once,
    a_retried_publication_gets_the_version_it_published,
}
