//! Denied and not-found calls leave a trace, and probing cannot flood the trail.
//!
//! A case worker of one organisation probes another organisation's screening a
//! thousand times: every probe answers `404` (no existence oracle), the logs count
//! exactly a thousand refused calls naming the prober, and the intake audit trail
//! gains only a handful of `not_found` entries (one per window), all naming the
//! prober. The owner's own reads are recorded as before and not as refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_e2e::{TestStack, on_both_backends};

const PROBES: u64 = 1_000;

/// `(actor, outcome, action)` of every refusal entry in intake's audit trail.
async fn refusal_entries(stack: &TestStack) -> Vec<(String, String, String)> {
    use sqlx::Connection as _;
    const QUERY: &str = "SELECT actor, outcome, action FROM {table} WHERE record_type = 'probe'";
    match &stack.settings.database.url {
        None => {
            let url = format!(
                "sqlite://{}?mode=ro",
                stack.settings.data_dir.join("intake.db").display()
            );
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(sqlx::AssertSqlSafe(QUERY.replace("{table}", "audit_log")))
                .fetch_all(&mut connection)
                .await
                .unwrap()
        }
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            sqlx::query_as(sqlx::AssertSqlSafe(
                QUERY.replace("{table}", "\"intake\".audit_log"),
            ))
            .fetch_all(&mut connection)
            .await
            .unwrap()
        }
    }
}

/// The refused calls the logs count for `actor`.
fn logged_refusals(actor: &str) -> u64 {
    haven_e2e::logs()
        .text()
        .lines()
        .filter(|line| line.contains("refused calls") && line.contains(actor))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            entry["fields"]["count"]
                .as_u64()
                .or_else(|| entry["count"].as_u64())
        })
        .sum()
}

async fn probing_another_organisation_is_recorded_without_flooding_the_trail(stack: TestStack) {
    let owner = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], owner);
    let created = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let screening: Value = created.json().await.unwrap();
    let path = format!("/v1/screenings/{}", screening["id"].as_str().unwrap());

    let prober = format!("prober-{}", Uuid::new_v4().simple());
    let foreign = stack.token_as(&prober, &["case_worker"], Uuid::new_v4());
    for _ in 0..PROBES {
        let response = stack.get(&foreign, &path).await;
        assert_eq!(response.status(), 404);
    }
    let read = stack.get(&officer, &path).await;
    assert_eq!(read.status(), 200);

    // Written once per window: wait for the window that holds the last probes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while logged_refusals(&prober) < PROBES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the logs counted {} of {PROBES} refused calls",
            logged_refusals(&prober)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        logged_refusals(&prober),
        PROBES,
        "every probe is counted once"
    );

    let entries = refusal_entries(&stack).await;
    let probes: Vec<_> = entries
        .iter()
        .filter(|(actor, ..)| *actor == prober)
        .collect();
    assert!(
        !probes.is_empty() && probes.len() <= 10,
        "{} audit entries for {PROBES} probes",
        probes.len()
    );
    for (_, outcome, action) in &probes {
        assert_eq!(outcome, "not_found");
        assert_eq!(action, "intake.get_screening.refused");
    }
    assert!(
        entries
            .iter()
            .all(|(actor, ..)| !actor.starts_with("user-")),
        "the owner's own reads are not refusals: {entries:?}"
    );
    stack.stop().await;
}

on_both_backends!(probing_another_organisation_is_recorded_without_flooding_the_trail);
