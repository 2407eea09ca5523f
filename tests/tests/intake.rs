//! Intake to National Referral Mechanism level, over REST on the real stack: the full
//! screening (person, indicators, exploitation, risk), consent checked at the time of
//! use, statutory clocks, duplicates across scripts and re-trafficking, versioned
//! indicator sets, and optimistic concurrency on updates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use haven_e2e::TestStack;

const OFFICER: &[&str] = &["intake_officer", "case_worker", "analyst"];

fn decision(stage: &str) -> Value {
    json!({"stage": stage, "deciding_organization_type": "police", "legal_basis": "Law on Combating Trafficking in Persons, art. 17"})
}

async fn create(stack: &TestStack, token: &str, body: Value) -> Value {
    let response = stack.post(token, "/v1/screenings", body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn a_full_screening_opens_a_case_only_with_consent_at_the_time(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let screening = create(
        &stack,
        &officer,
        json!({
            "referral_source": "labour_inspection", "settlement": "Lənkəran", "language": "az", "interpreter_used": true,
            "person": {"given_name": "Rəşid", "family_name": "Cəfərov", "birth_year": 1988, "gender": "male", "citizenships": ["az"]},
            "indicators": {"answers": [{"code": "document_retention", "answer": "yes", "note": "employer kept the passport"}, {"code": "withheld_wages", "answer": "unknown"}]},
            "exploitation": {"types": ["forced_labour"], "means_of_control": ["debt_bondage"], "countries_of_exploitation": ["ru"], "started": "2025-04"},
            "risk": {"level": "high", "factors": ["trafficker_contact"], "immediate_needs": ["shelter", "medical"]}
        }),
    )
    .await;
    assert_eq!(screening["indicators"]["indicator_set_version"], 1);
    assert_eq!(
        screening["indicators"]["answers"][0]["note"],
        "employer kept the passport"
    );
    assert_eq!(screening["exploitation"]["types"], json!(["forced_labour"]));
    assert_eq!(
        screening["exploitation"]["countries_of_exploitation"],
        json!(["RU"])
    );
    assert_eq!(
        screening["risk"]["immediate_needs"],
        json!(["shelter", "medical"])
    );
    let id = screening["id"].as_str().unwrap();

    // Consent given, then withdrawn before the decision: the decision opens no case.
    let consent =
        |given: bool| json!({"purpose": "assistance", "given": given, "method": "written"});
    stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            consent(true),
        )
        .await;
    stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            consent(false),
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
    assert!(decided["case_id"].is_null(), "withdrawn consent: no case");
    assert_eq!(
        decided["consents"].as_array().unwrap().len(),
        2,
        "the withdrawal is kept, not overwritten"
    );

    // Consent given again: the case opens now, exactly once.
    let consented: Value = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            consent(true),
        )
        .await
        .json()
        .await
        .unwrap();
    let case_id = consented["case_id"]
        .as_str()
        .expect("case opened on renewed consent")
        .to_owned();
    let again: Value = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/decisions"),
            decision("identified"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["case_id"], case_id.as_str());
    assert_eq!(
        stack
            .get(&officer, &format!("/v1/cases/{case_id}"))
            .await
            .status(),
        200
    );

    // Unknown indicator codes and bad values are refused naming the field.
    let refused = stack
        .post(&officer, "/v1/screenings", json!({"referral_source": "police", "indicators": {"answers": [{"code": "made_up", "answer": "yes"}]}}))
        .await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "indicators.answers.code",
        "{problem}"
    );
    let refused = stack.post(&officer, "/v1/screenings", json!({"referral_source": "police", "exploitation": {"countries_of_origin": ["Azerbaijan"]}})).await;
    assert_eq!(refused.status(), 400);
    stack.stop().await;
}

async fn statutory_clocks_fall_due_and_can_be_completed(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let screening = create(&stack, &officer, json!({"referral_source": "hotline"})).await;
    let id = screening["id"].as_str().unwrap();
    let thirty_hours_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut presumed = decision("presumed_victim");
    presumed["decided_at"] = json!(thirty_hours_ago);
    assert_eq!(
        stack
            .post(
                &officer,
                &format!("/v1/screenings/{id}/decisions"),
                presumed
            )
            .await
            .status(),
        201
    );

    let overdue: Value = stack
        .get(&officer, "/v1/clocks?state=overdue")
        .await
        .json()
        .await
        .unwrap();
    let items = overdue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{overdue}");
    assert_eq!(items[0]["name"], "police_referral");
    assert_eq!(items[0]["state"], "overdue");
    assert_eq!(items[0]["screening_id"], id);
    let listed: Value = stack
        .get(&officer, "/v1/screenings?overdue_clock=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let stranger = stack.token(OFFICER, Uuid::new_v4());
    let theirs: Value = stack
        .get(&stranger, "/v1/clocks")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        theirs["items"].as_array().unwrap().is_empty(),
        "clocks are per organisation"
    );
    let clock_id = items[0]["id"].as_str().unwrap();
    assert_eq!(
        stack
            .post(
                &stranger,
                &format!("/v1/clocks/{clock_id}/complete"),
                json!({})
            )
            .await
            .status(),
        404
    );

    let completed = stack
        .post(
            &officer,
            &format!("/v1/clocks/{clock_id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(completed.status(), 201);
    let completed: Value = completed.json().await.unwrap();
    assert_eq!(completed["state"], "completed");
    let overdue: Value = stack
        .get(&officer, "/v1/clocks?state=overdue")
        .await
        .json()
        .await
        .unwrap();
    assert!(overdue["items"].as_array().unwrap().is_empty());
    stack.stop().await;
}

async fn duplicates_across_scripts_are_found_and_re_trafficking_is_counted(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let person = |given: &str, family: &str| json!({"given_name": given, "family_name": family, "birth_year": 1994});
    let first = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "person": person("Aynur", "Məmmədova")}),
    )
    .await;
    let latin = create(
        &stack,
        &officer,
        json!({"referral_source": "police", "person": person("Aynur", "Mammadova")}),
    )
    .await;
    let elsewhere = stack.token(OFFICER, Uuid::new_v4());
    create(
        &stack,
        &elsewhere,
        json!({"referral_source": "hotline", "person": person("Айнур", "Мамедова")}),
    )
    .await;

    let matches: Value = stack
        .get(
            &officer,
            &format!("/v1/screenings/{}/matches", latin["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    let items = matches["items"].as_array().unwrap();
    let mine: Vec<&Value> = items
        .iter()
        .filter(|found| found["restricted"] == false)
        .collect();
    let theirs: Vec<&Value> = items
        .iter()
        .filter(|found| found["restricted"] == true)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["person_id"], first["person_id"]);
    assert_eq!(
        theirs.len(),
        1,
        "another organisation's record is a hint: {matches}"
    );
    assert!(theirs[0]["person_id"].is_null() && theirs[0]["person_code"].is_null());
    assert!(theirs[0]["organization_id"].is_string());

    let confirmed = stack
        .post(
            &officer,
            &format!(
                "/v1/screenings/{}/matches/confirm",
                latin["id"].as_str().unwrap()
            ),
            json!({"person_id": first["person_id"]}),
        )
        .await;
    assert_eq!(confirmed.status(), 201);
    let confirmed: Value = confirmed.json().await.unwrap();
    assert_eq!(confirmed["re_trafficked"], true);
    let summary = stack
        .summary_until(&officer, "", |summary| summary["re_trafficked_total"] == 1)
        .await;
    // The summary is the caller's own organisation's: its two screenings, not the
    // other organisation's third.
    assert_eq!(summary["screenings_total"], 2);
    stack.stop().await;
}

async fn updates_need_if_match_and_lose_to_a_newer_version(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let created = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline"}),
        )
        .await;
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let screening: Value = created.json().await.unwrap();
    let path = format!("/v1/screenings/{}", screening["id"].as_str().unwrap());
    let risk = |level: &str| json!({"risk": {"level": level}});

    let without = stack
        .http
        .patch(stack.url(&path))
        .bearer_auth(&officer)
        .json(&risk("low"))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 428);
    let first = stack
        .http
        .patch(stack.url(&path))
        .bearer_auth(&officer)
        .header("if-match", &etag)
        .json(&risk("medium"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let new_etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    // A second caseworker still holding the old ETag loses, with nothing written.
    let second = stack
        .http
        .patch(stack.url(&path))
        .bearer_auth(&officer)
        .header("if-match", &etag)
        .json(&risk("low"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 412);
    assert_eq!(second.headers()["content-type"], "application/problem+json");
    let current: Value = stack.get(&officer, &path).await.json().await.unwrap();
    assert_eq!(current["risk"]["level"], "medium");
    stack.stop().await;
}

async fn indicator_sets_are_published_as_new_versions(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let admin = stack.token(&["admin"], organization);
    let sets: Value = stack
        .get(&officer, "/v1/indicator_sets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sets["items"][0]["version"], 1);
    let body = json!({"name": "2027 indicators", "groups": [{"exploitation_type": "general", "indicators": [
        {"code": "document_retention", "label": "Documents withheld"},
        {"code": "online_grooming", "label": "Recruited through online grooming"}]}]});
    assert_eq!(
        stack
            .post(&officer, "/v1/indicator_sets", body.clone())
            .await
            .status(),
        403,
        "only admins publish"
    );
    let published = stack.post(&admin, "/v1/indicator_sets", body).await;
    assert_eq!(published.status(), 201);
    let published: Value = published.json().await.unwrap();
    assert_eq!(published["version"], 2);
    let screening = create(&stack, &officer, json!({"referral_source": "hotline", "indicators": {"answers": [{"code": "online_grooming", "answer": "yes"}]}})).await;
    assert_eq!(screening["indicators"]["indicator_set_version"], 2);
    let old = create(&stack, &officer, json!({"referral_source": "hotline", "indicators": {"indicator_set_version": 1, "answers": [{"code": "isolation", "answer": "no"}]}})).await;
    assert_eq!(old["indicators"]["indicator_set_version"], 1);
    let v1: Value = stack
        .get(&officer, "/v1/indicator_sets/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["name"], "Default trafficking indicators");
    stack.stop().await;
}

async fn minors_act_through_a_guardian_and_sharing_consent_can_be_limited(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let refused = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline", "is_minor": true}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "guardian");

    let minor = create(
        &stack,
        &officer,
        json!({"referral_source": "hotline", "is_minor": true, "coordinates": {"latitude": 40.41, "longitude": 49.87},
               "guardian": {"name": "Leyla Həsənova", "relationship": "parent", "contact": "+994 50 111 22 33"}}),
    )
    .await;
    assert_eq!(minor["guardian"]["relationship"], "parent");
    assert_eq!(minor["coordinates"]["latitude"], 40.41);
    let id = minor["id"].as_str().unwrap();
    let by_minor = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "verbal"}),
        )
        .await;
    assert_eq!(
        by_minor.status(),
        400,
        "a minor consents through the guardian"
    );
    let by_guardian = stack
        .post(&officer, &format!("/v1/screenings/{id}/consents"), json!({"purpose": "assistance", "given": true, "method": "written", "by_guardian": true}))
        .await;
    assert_eq!(by_guardian.status(), 201);
    let limited = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "data_sharing", "given": true, "method": "written", "by_guardian": true, "organization_types": ["ngo", "government"]}),
        )
        .await;
    assert_eq!(limited.status(), 201);
    let limited: Value = limited.json().await.unwrap();
    assert_eq!(
        limited["consents"][1]["organization_types"],
        json!(["ngo", "government"])
    );
    let wrong = stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "written", "by_guardian": true, "organization_types": ["ngo"]}),
        )
        .await;
    assert_eq!(
        wrong.status(),
        400,
        "only data sharing is limited by organisation type"
    );
    stack.stop().await;
}

async fn the_same_idempotency_key_twice_creates_one_screening(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let body = json!({"referral_source": "hotline", "settlement": "Şəki",
        "person": {"given_name": "Aynur", "family_name": "Məmmədova", "birth_year": 1994}});
    let send = |body: Value| {
        stack
            .http
            .post(stack.url("/v1/screenings"))
            .bearer_auth(&officer)
            .header("idempotency-key", "intake-retry-1")
            .json(&body)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotency-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let second = send(body.clone()).await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotency-replayed"], "true");
    assert_eq!(second.headers()["location"], location);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["person_code"], first["person_code"]);
    let listed: Value = stack
        .get(&officer, "/v1/screenings")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "one screening"
    );

    // Consents and decisions are creates too: a retried one is recorded once.
    let id = first["id"].as_str().unwrap();
    let consent = json!({"purpose": "assistance", "given": true, "method": "written"});
    for _ in 0..2 {
        let response = stack
            .http
            .post(stack.url(&format!("/v1/screenings/{id}/consents")))
            .bearer_auth(&officer)
            .header("idempotency-key", "consent-retry-1")
            .json(&consent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let current: Value = stack
        .get(&officer, &format!("/v1/screenings/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["consents"].as_array().unwrap().len(), 1);

    let mut changed = body;
    changed["settlement"] = json!("Quba");
    let reused = send(changed).await.unwrap();
    assert_eq!(reused.status(), 422);
    assert_eq!(reused.headers()["content-type"], "application/problem+json");
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    a_full_screening_opens_a_case_only_with_consent_at_the_time,
    statutory_clocks_fall_due_and_can_be_completed,
    duplicates_across_scripts_are_found_and_re_trafficking_is_counted,
    updates_need_if_match_and_lose_to_a_newer_version,
    indicator_sets_are_published_as_new_versions,
    minors_act_through_a_guardian_and_sharing_consent_can_be_limited,
    the_same_idempotency_key_twice_creates_one_screening,
}
