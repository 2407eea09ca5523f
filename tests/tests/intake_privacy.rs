//! Intake's privacy promises over REST and gRPC on the real stack, on both backends:
//! every screening read is audited, and erasure leaves no copy of the destroyed keys
//! in the database files and nothing of the person in the event feed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_e2e::{Backend, TestStack, authorized};
use haven_proto::common::v1::event_feed_service_client::EventFeedServiceClient;
use haven_proto::common::v1::{Event, WatchEventsRequest};
use haven_storage::Database;

const OFFICER: &[&str] = &["intake_officer", "case_worker"];

async fn create(stack: &TestStack, token: &str, body: Value) -> Value {
    let response = stack.post(token, "/v1/screenings", body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// A second connection to intake's own database (file or schema), as an operator
/// with database access would have.
async fn intake_database(stack: &TestStack) -> Database {
    haven_intake::connect(&stack.settings).await.unwrap()
}

/// The actors of the `screening.read` entries about a screening, oldest first.
async fn screening_readers(database: &Database, id: &str) -> Vec<String> {
    let id = Uuid::parse_str(id).unwrap();
    haven_audit::entries_for_record(database, "screening", id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "screening.read")
        .map(|entry| entry.actor)
        .collect()
}

/// Makes every append to intake's audit trail fail from now on.
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

async fn reading_a_screening_is_audited_and_fails_without_its_audit_entry(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token_as("officer-ann", OFFICER, organization);
    let screening = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "settlement": "Ganja", "is_minor": true,
               "guardian": {"name": "Guardian Canary", "relationship": "parent", "contact": "+994 50 000 00 00"}}),
    )
    .await;
    let id = screening["id"].as_str().unwrap();
    let database = intake_database(&stack).await;
    assert!(
        screening_readers(&database, id).await.is_empty(),
        "nothing read yet"
    );

    let reader = stack.token_as("worker-bob", &["case_worker"], organization);
    let read = stack.get(&reader, &format!("/v1/screenings/{id}")).await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["guardian"]["name"], "Guardian Canary");
    assert_eq!(screening_readers(&database, id).await, ["worker-bob"]);

    let lister = stack.token_as("supervisor-cem", &["supervisor"], organization);
    let listed = stack.get(&lister, "/v1/screenings").await;
    assert_eq!(listed.status(), 200);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        screening_readers(&database, id).await,
        ["worker-bob", "supervisor-cem"],
        "a list read is recorded for every screening it returns"
    );

    break_the_audit_trail(&database).await;
    let unaudited = stack.get(&reader, &format!("/v1/screenings/{id}")).await;
    assert_eq!(unaudited.status(), 500, "no read without its audit entry");
    let body: Value = unaudited.json().await.unwrap();
    assert!(!body.to_string().contains("Guardian Canary"));
    let unaudited = stack.get(&lister, "/v1/screenings").await;
    assert_eq!(unaudited.status(), 500, "no list without its audit entries");
    database.close().await;
    stack.stop().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The raw bytes of intake's database: on SQLite the database file with its WAL and
/// shared-memory index; on Postgres every row of the intake schema as text (bytea
/// shows as hex).
async fn intake_bytes(stack: &TestStack, database: &Database) -> Vec<u8> {
    match database {
        Database::Sqlite(_) => {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                let path = stack.settings.data_dir.join(format!("intake.db{suffix}"));
                if let Ok(file) = std::fs::read(&path) {
                    bytes.extend(file);
                }
            }
            bytes
        }
        Database::Postgres(pool) => {
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'intake'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut bytes = Vec::new();
            for (table,) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM intake.\"{table}\" t"
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

/// How a stored key appears in [`intake_bytes`].
fn as_stored(stack: &TestStack, key: &[u8]) -> Vec<u8> {
    match stack.backend {
        Backend::Sqlite => key.to_vec(),
        Backend::Postgres => hex::encode(key).into_bytes(),
    }
}

async fn wrapped_key(database: &Database, table: &str, id: &str) -> Vec<u8> {
    let sql = format!("SELECT wrapped_key FROM {table} WHERE id = $1");
    let id = Uuid::parse_str(id).unwrap();
    let (key,): (Option<Vec<u8>>,) = match database {
        Database::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap(),
    };
    key.expect("a live record has its wrapped key")
}

/// The intake events `token` receives, until `done` holds.
async fn watch_until(
    stack: &TestStack,
    token: &str,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let mut client = EventFeedServiceClient::new(stack.channel(ServiceName::Intake).await);
    let mut stream = client
        .watch_events(authorized(WatchEventsRequest { after_sequence: 0 }, token))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&events) {
        let next = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("the feed delivered the expected events in time")
            .unwrap()
            .expect("the feed stays open");
        events.extend(next.event);
    }
    events
}

async fn erasure_leaves_no_key_in_the_database_files_and_no_person_in_the_feed(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    let admin = stack.token(&["admin"], organization);
    let screening = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "settlement": "Ganja",
               "person": {"given_name": "Aynur", "family_name": "Məmmədova", "birth_year": 1994, "gender": "female", "citizenships": ["az"]},
               "indicators": {"answers": [{"code": "document_retention", "answer": "yes", "note": "employer kept the passport"}]}}),
    )
    .await;
    let screening_id = screening["id"].as_str().unwrap().to_owned();
    let person_id = screening["person_id"].as_str().unwrap().to_owned();
    let database = intake_database(&stack).await;
    let keys = [
        as_stored(&stack, &wrapped_key(&database, "persons", &person_id).await),
        as_stored(
            &stack,
            &wrapped_key(&database, "screenings", &screening_id).await,
        ),
    ];
    let before = intake_bytes(&stack, &database).await;
    for key in &keys {
        assert!(
            contains(&before, key),
            "the search sees the stored keys before erasure"
        );
    }
    let created = |events: &[Event]| {
        events.iter().any(|event| {
            event.aggregate_id == screening_id && event.event_type == "screening.created"
        })
    };
    // The feed as the services receive it: people following a feed never get the
    // person's fields at all.
    let service =
        haven_auth::keys::ServiceTokens::new(&stack.settings.auth, &stack.keys, "reporting")
            .token()
            .unwrap();
    let events = watch_until(&stack, &service, created).await;
    let payload = &events
        .iter()
        .find(|event| event.aggregate_id == screening_id)
        .unwrap()
        .payload_json;
    assert!(
        payload.contains("1994"),
        "the feed described the person before erasure: {payload}"
    );

    // The reason is typed text: it may name the person.
    let reason = format!("Canaryreason{} asked by Aynur", Uuid::new_v4().simple());
    let erased = stack
        .http
        .delete(stack.url(&format!("/v1/persons/{person_id}")))
        .bearer_auth(&admin)
        .json(&json!({"reason": reason}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);

    let after = intake_bytes(&stack, &database).await;
    for key in &keys {
        assert!(
            !contains(&after, key),
            "a destroyed key is left in the database files"
        );
    }
    assert!(
        !contains(&after, reason.as_bytes()),
        "the typed reason is stored in the clear"
    );

    let erasure_seen = |events: &[Event]| {
        events
            .iter()
            .any(|event| event.event_type == "person.erased" && event.aggregate_id == person_id)
    };
    let events = watch_until(&stack, &service, erasure_seen).await;
    let about_the_person: Vec<&Event> = events
        .iter()
        .filter(|event| event.aggregate_id == screening_id || event.aggregate_id == person_id)
        .collect();
    assert!(about_the_person.len() >= 2);
    let mut sequences: Vec<u64> = Vec::new();
    for event in about_the_person {
        sequences.push(event.sequence);
        let payload: Value = serde_json::from_str(&event.payload_json).unwrap();
        if event.event_type == "person.erased" {
            assert_eq!(payload, json!({"person_id": person_id}));
        } else {
            assert_eq!(
                payload,
                json!({"redacted": true}),
                "{} keeps its sequence, not its payload",
                event.event_type
            );
        }
    }
    assert!(
        sequences.windows(2).all(|pair| pair[0] < pair[1]),
        "sequences stay in place"
    );
    database.close().await;
    stack.stop().await;
}

fn decision(stage: &str) -> Value {
    json!({"stage": stage, "deciding_organization_type": "police",
           "legal_basis": "Law on Combating Trafficking in Persons, art. 17"})
}

/// The ids listed under `items` of a REST list.
async fn listed_ids(stack: &TestStack, token: &str, path: &str, field: &str) -> Vec<String> {
    let response = stack.get(token, path).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn a_sealed_case_seals_its_person_and_screenings(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    let person = json!({"given_name": "Aynur", "family_name": "Məmmədova", "birth_year": 1994});
    let screening = create(
        &stack,
        &officer,
        json!({"referral_source": "police", "settlement": "Ganja", "person": person}),
    )
    .await;
    let id = screening["id"].as_str().unwrap().to_owned();
    let person_id = screening["person_id"].as_str().unwrap().to_owned();
    // The same person screened again: a duplicate the search would find.
    let twin = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "person": person}),
    )
    .await;
    let twin_id = twin["id"].as_str().unwrap().to_owned();
    let consent = json!({"purpose": "assistance", "given": true, "method": "written"});
    stack
        .post(&officer, &format!("/v1/screenings/{id}/consents"), consent)
        .await;
    stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/decisions"),
            decision("presumed_victim"),
        )
        .await;
    let decided: Value = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/decisions"),
            decision("identified"),
        )
        .await
        .json()
        .await
        .unwrap();
    let case = decided["case_id"].as_str().expect("case opened").to_owned();

    let case_worker = stack.token(&["case_worker"], organization);
    let supervisor = stack.token(&["supervisor"], organization);
    let admin = stack.token(&["admin"], organization);
    let person_path = format!("/v1/persons/{person_id}");
    let screening_path = format!("/v1/screenings/{id}");
    let matches_path = format!("/v1/screenings/{twin_id}/matches");
    for token in [&case_worker, &supervisor] {
        assert_eq!(stack.get(token, &person_path).await.status(), 200);
        assert_eq!(stack.get(token, &screening_path).await.status(), 200);
    }
    assert!(
        listed_ids(&stack, &supervisor, "/v1/clocks", "screening_id")
            .await
            .contains(&id)
    );
    assert!(
        listed_ids(&stack, &supervisor, &matches_path, "person_id")
            .await
            .contains(&person_id)
    );

    let sealed = stack
        .post(
            &supervisor,
            &format!("/v1/cases/{case}/seal"),
            json!({"legal_basis": "court order 12/2026"}),
        )
        .await;
    assert_eq!(sealed.status(), 201);

    // Intake hears of the seal from the case service's feed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stack.get(&case_worker, &person_path).await.status() != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the person was never sealed with the case"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for token in [&case_worker, &supervisor] {
        assert_eq!(stack.get(token, &person_path).await.status(), 404);
        let hidden = stack.get(token, &screening_path).await;
        assert_eq!(hidden.status(), 404);
        assert!(!hidden.text().await.unwrap().contains(&case));
        let listed = listed_ids(&stack, token, "/v1/screenings", "id").await;
        assert_eq!(
            listed,
            std::slice::from_ref(&twin_id),
            "the sealed screening leaves lists"
        );
    }
    assert_eq!(
        stack
            .get(&supervisor, &format!("{person_path}/access_log"))
            .await
            .status(),
        404
    );
    assert!(
        !listed_ids(&stack, &supervisor, "/v1/clocks", "screening_id")
            .await
            .contains(&id)
    );
    assert!(
        !listed_ids(&stack, &supervisor, &matches_path, "person_id")
            .await
            .contains(&person_id),
        "a sealed person is no match"
    );

    let read = stack.get(&admin, &person_path).await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["details"]["given_name"], "Aynur");
    let read = stack.get(&admin, &screening_path).await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["case_id"], case.as_str());
    assert!(
        listed_ids(&stack, &admin, "/v1/screenings", "id")
            .await
            .contains(&id)
    );
    stack.stop().await;
}

fn contains_text(haystack: &[u8], needle: &str) -> bool {
    contains(haystack, needle.as_bytes())
}

async fn refused_settlement(stack: &TestStack, token: &str, body: Value) -> Value {
    let response = stack.post(token, "/v1/screenings", body).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "settlement", "{problem}");
    problem
}

async fn settlements_come_from_the_gazetteer_and_typed_text_is_stored_only_encrypted(
    stack: TestStack,
) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    for spelling in ["Ganja", "gəncə", "GENCE", " Gəncə "] {
        let screening = create(
            &stack,
            &officer,
            json!({"referral_source": "hotline", "settlement": spelling}),
        )
        .await;
        assert_eq!(screening["settlement"], "Gəncə", "{spelling}");
    }
    let tag = Uuid::new_v4().simple().to_string();
    let canary = |field: &str| format!("Canary{field}{}", &tag[..12]);
    let problem = refused_settlement(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "settlement": canary("village")}),
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`other`"),
        "the refusal says how to name a place outside the gazetteer: {problem}"
    );
    assert!(!problem.to_string().contains(&canary("village")));
    refused_settlement(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "settlement": "other"}),
    )
    .await;
    let elsewhere = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "settlement": "other",
               "coordinates": {"latitude": 40.1, "longitude": 47.2}}),
    )
    .await;
    assert_eq!(elsewhere["settlement"], "other");

    // A canary typed into every free-text field intake keeps.
    let created = stack
        .http
        .post(stack.url("/v1/screenings"))
        .bearer_auth(&officer)
        .header("idempotency-key", canary("key"))
        .json(&json!({"referral_source": "hotline", "settlement": "Şəki", "is_minor": true,
            "guardian": {"name": canary("guardian"), "relationship": "parent", "contact": canary("contact")},
            "indicators": {"answers": [{"code": "document_retention", "answer": "yes", "note": canary("note")}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let screening: Value = created.json().await.unwrap();
    let id = screening["id"].as_str().unwrap();
    let decision = json!({"stage": "presumed_victim", "deciding_organization_type": "police",
        "legal_basis": canary("basis"), "reasons": canary("reason")});
    let decided = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/decisions"),
            decision,
        )
        .await;
    assert_eq!(decided.status(), 201);
    let read: Value = stack
        .get(&officer, &format!("/v1/screenings/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read["decisions"][0]["legal_basis"],
        canary("basis").as_str()
    );
    assert_eq!(read["decisions"][0]["reasons"], canary("reason").as_str());
    assert_eq!(read["guardian"]["name"], canary("guardian").as_str());

    let database = intake_database(&stack).await;
    let stored = intake_bytes(&stack, &database).await;
    assert!(
        contains_text(&stored, "Şəki"),
        "the check sees what is stored in the clear"
    );
    for field in [
        "village", "key", "guardian", "contact", "note", "basis", "reason",
    ] {
        assert!(
            !contains_text(&stored, &canary(field)),
            "the {field} typed is stored in the clear"
        );
    }
    database.close().await;
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    reading_a_screening_is_audited_and_fails_without_its_audit_entry,
    erasure_leaves_no_key_in_the_database_files_and_no_person_in_the_feed,
    a_sealed_case_seals_its_person_and_screenings,
    settlements_come_from_the_gazetteer_and_typed_text_is_stored_only_encrypted,
}
