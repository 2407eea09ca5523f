//! The first path end to end — screening → consent → identification → case opened by
//! intake over gRPC → case readable → reporting counts from events — over REST and
//! over gRPC, on SQLite and on Postgres, with the real services on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized};
use haven_proto::case::v1::GetCaseRequest;
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use haven_proto::reporting::v1::GetSummaryRequest;
use haven_proto::reporting::v1::reporting_service_client::ReportingServiceClient;

const OFFICER: &[&str] = &["intake_officer"];
const CASE_WORKER: &[&str] = &["case_worker"];
const ANALYST: &[&str] = &["analyst"];

fn identified_decision() -> Value {
    json!({
        "stage": "identified",
        "deciding_organization_type": "police",
        "legal_basis": "Law on Combating Trafficking in Persons, art. 17",
        "reasons": "indicators of forced labour confirmed",
    })
}

async fn rest_path_opens_one_case_and_reporting_counts_it(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);

    let created = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline", "settlement": "Ganja", "language": "az"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(created.headers().contains_key("etag"));
    let screening: Value = created.json().await.unwrap();
    let screening_id = screening["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/screenings/{screening_id}"));
    assert_eq!(screening["stage"], "screened");
    assert!(screening["case_id"].is_null());

    let consent = stack
        .post(
            &officer,
            &format!("/v1/screenings/{screening_id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "written"}),
        )
        .await;
    assert_eq!(consent.status(), 201);

    let decided = stack
        .post(
            &officer,
            &format!("/v1/screenings/{screening_id}/decisions"),
            identified_decision(),
        )
        .await;
    assert_eq!(decided.status(), 201);
    let decided: Value = decided.json().await.unwrap();
    assert_eq!(decided["stage"], "identified");
    let case_id = decided["case_id"]
        .as_str()
        .expect("intake opened the case")
        .to_owned();

    // Retrying the decision (a client that lost the response) opens no second case.
    let retried = stack
        .post(
            &officer,
            &format!("/v1/screenings/{screening_id}/decisions"),
            identified_decision(),
        )
        .await;
    assert_eq!(retried.status(), 201);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["case_id"], case_id.as_str());
    assert_eq!(
        retried["decisions"].as_array().unwrap().len(),
        2,
        "the decision history keeps both"
    );

    let case_worker = stack.token(CASE_WORKER, organization);
    let case = stack
        .get(&case_worker, &format!("/v1/cases/{case_id}"))
        .await;
    assert_eq!(case.status(), 200);
    assert_eq!(case.headers()["cache-control"], "no-store");
    let case: Value = case.json().await.unwrap();
    assert_eq!(case["id"], case_id.as_str());
    assert_eq!(case["screening_id"], screening_id.as_str());
    assert_eq!(case["status"], "active");
    assert!(case["code"].as_str().unwrap().starts_with("HV-"), "{case}");

    let listed: Value = stack
        .get(&case_worker, "/v1/cases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    let analyst = stack.token(ANALYST, organization);
    let summary = stack
        .summary_until(&analyst, "", |summary| {
            summary["screenings_total"] == 1 && summary["cases_open"] == 1
        })
        .await;
    assert_eq!(summary["identified_total"], 1);
    assert_eq!(
        summary["cases_total"], 1,
        "exactly one case, however often intake was asked"
    );
    stack.stop().await;
}

async fn grpc_path_opens_one_case_and_reporting_counts_it(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let mut intake_client = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);

    let screening = intake_client
        .create_screening(authorized(
            intake::CreateScreeningRequest {
                referral_source: intake::ReferralSource::Police.into(),
                settlement: "Sumqayit".into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap();
    intake_client
        .record_consent(authorized(
            intake::RecordConsentRequest {
                screening_id: screening.id.clone(),
                purpose: intake::ConsentPurpose::Assistance.into(),
                given: true,
                method: intake::ConsentMethod::Verbal.into(),
                ..Default::default()
            },
            &officer,
        ))
        .await
        .unwrap();
    let decision = intake::RecordDecisionRequest {
        screening_id: screening.id.clone(),
        stage: intake::IdentificationStage::Identified.into(),
        deciding_organization_type: intake::DecidingOrganizationType::Police.into(),
        legal_basis: "art. 17".into(),
        ..Default::default()
    };
    let decided = intake_client
        .record_decision(authorized(decision.clone(), &officer))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap();
    assert!(!decided.case_id.is_empty());
    let again = intake_client
        .record_decision(authorized(decision, &officer))
        .await
        .unwrap()
        .into_inner()
        .screening
        .unwrap();
    assert_eq!(again.case_id, decided.case_id);

    let case_worker = stack.token(CASE_WORKER, organization);
    let mut case_client = CaseServiceClient::new(stack.channel(ServiceName::Case).await);
    let case = case_client
        .get_case(authorized(
            GetCaseRequest {
                id: decided.case_id.clone(),
            },
            &case_worker,
        ))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.screening_id, screening.id);

    // A user cannot call OpenCase: only intake's service identity may.
    let forged = case_client
        .open_case(authorized(
            haven_proto::case::v1::OpenCaseRequest {
                screening_id: Uuid::new_v4().to_string(),
                organization_id: organization.to_string(),
                person_id: String::new(),
            },
            &stack.token(&["admin"], organization),
        ))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), tonic::Code::PermissionDenied);

    let analyst = stack.token(ANALYST, organization);
    let mut reporting = ReportingServiceClient::new(stack.channel(ServiceName::Reporting).await);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let summary = reporting
            .get_summary(authorized(
                GetSummaryRequest {
                    organization_id: organization.to_string(),
                },
                &analyst,
            ))
            .await
            .unwrap()
            .into_inner();
        if summary.screenings_total == 1 && summary.cases_open == 1 {
            assert_eq!(summary.cases_total, 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{summary:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stack.stop().await;
}

async fn callers_get_clear_errors_and_nothing_leaks_across_organizations(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);

    let anonymous = stack.http.get(stack.url("/v1/cases")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );

    let mut other_audience = stack.settings.auth.clone();
    other_audience.audience = "someone-else".into();
    let wrong_audience = stack.token_for(&other_audience, OFFICER, organization);
    assert_eq!(
        stack.get(&wrong_audience, "/v1/screenings").await.status(),
        401
    );

    // A service token is not accepted at the REST edge.
    let service_token =
        haven_auth::keys::ServiceTokens::new(&stack.settings.auth, &stack.keys, "intake")
            .token()
            .unwrap();
    assert_eq!(stack.get(&service_token, "/v1/cases").await.status(), 401);

    let garbage = stack
        .http
        .post(stack.url("/v1/screenings"))
        .bearer_auth(&officer)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(
        garbage.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = garbage.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(problem["request_id"].is_string());

    let invalid = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "unspecified"}),
        )
        .await;
    assert_eq!(invalid.status(), 400);
    let problem: Value = invalid.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "referral_source",
        "{problem}"
    );

    let case_worker = stack.token(CASE_WORKER, organization);
    let unknown = stack
        .get(&case_worker, &format!("/v1/cases/{}", Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );

    // Another organisation's screening answers 404, exactly like a missing one.
    let created: Value = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "police"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let stranger = stack.token(OFFICER, Uuid::new_v4());
    assert_eq!(
        stack
            .get(&stranger, &format!("/v1/screenings/{id}"))
            .await
            .status(),
        404
    );
    let listed: Value = stack
        .get(&stranger, "/v1/screenings")
        .await
        .json()
        .await
        .unwrap();
    assert!(listed["items"].as_array().unwrap().is_empty());
    let write = stack
        .post(
            &stranger,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "verbal"}),
        )
        .await;
    assert_eq!(write.status(), 404);

    // An analyst sees aggregates only.
    let analyst = stack.token(ANALYST, organization);
    assert_eq!(
        stack
            .get(&analyst, &format!("/v1/screenings/{id}"))
            .await
            .status(),
        403
    );
    stack.stop().await;
}

async fn one_trace_id_runs_from_the_gateway_through_the_services(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let trace_id = Uuid::new_v4().simple().to_string();
    let response = stack
        .http
        .post(stack.url("/v1/screenings"))
        .bearer_auth(&officer)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"referral_source": "ngo_outreach"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let logs = haven_e2e::logs().text();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(&trace_id))
        .collect();
    assert!(
        lines.iter().any(|line| line.contains("http.request")),
        "gateway span carries the trace id"
    );
    assert!(
        lines.iter().any(|line| line.contains("grpc.request")),
        "intake span carries the trace id"
    );
    assert!(!logs.contains(&officer), "tokens never reach the logs");
    stack.stop().await;
}

async fn a_sealed_case_is_readable_only_by_admins_and_auditors(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let (_, case) = stack.identified_case(&officer).await;
    let case = case.as_str();

    let supervisor = stack.token(&["supervisor"], organization);
    let refused = stack
        .post(
            &supervisor,
            &format!("/v1/cases/{case}/seal"),
            json!({"legal_basis": " "}),
        )
        .await;
    assert_eq!(refused.status(), 400, "a seal needs its legal basis");
    let sealed = stack
        .post(
            &supervisor,
            &format!("/v1/cases/{case}/seal"),
            json!({"legal_basis": "court order 12/2026"}),
        )
        .await;
    assert_eq!(sealed.status(), 201);

    let case_worker = stack.token(CASE_WORKER, organization);
    assert_eq!(
        stack
            .get(&case_worker, &format!("/v1/cases/{case}"))
            .await
            .status(),
        404
    );
    let listed: Value = stack
        .get(&case_worker, "/v1/cases")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed["items"].as_array().unwrap().is_empty(),
        "sealed cases leave lists too"
    );
    assert_eq!(
        stack
            .get(&supervisor, &format!("/v1/cases/{case}"))
            .await
            .status(),
        404
    );
    for reader in [&["auditor"][..], &["admin"][..]] {
        let token = stack.token(reader, organization);
        let response = stack.get(&token, &format!("/v1/cases/{case}")).await;
        assert_eq!(response.status(), 200, "{reader:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["sealed"], true);
    }
    stack.stop().await;
}

/// Every byte the stack stored: the SQLite files (with their WAL), or every row of
/// every Haven schema as text on Postgres.
async fn stored_bytes(stack: &TestStack) -> Vec<u8> {
    let mut bytes = Vec::new();
    match &stack.settings.database.url {
        None => {
            for entry in std::fs::read_dir(&stack.settings.data_dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    bytes.extend(std::fs::read(path).unwrap());
                }
            }
        }
        Some(url) => {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            let tables: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                 WHERE table_schema IN ('intake', 'case', 'referral', 'reporting')",
            )
            .fetch_all(&mut connection)
            .await
            .unwrap();
            assert!(tables.len() > 10, "{tables:?}");
            for (schema, table) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT t::text FROM \"{schema}\".\"{table}\" t"
                )))
                .fetch_all(&mut connection)
                .await
                .unwrap();
                for (row,) in rows {
                    bytes.extend(row.into_bytes());
                }
            }
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn personal_data_never_reaches_logs_or_storage_in_the_clear(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(
        &["intake_officer", "case_worker", "supervisor"],
        organization,
    );
    let tag = Uuid::new_v4().simple().to_string();
    let given = format!("Canarygiven{}", &tag[..10]);
    let family = format!("Canaryfamily{}", &tag[10..20]);
    let phone = format!("+994 55 {}", &tag[20..26]);
    let person = json!({
        "given_name": given, "family_name": family, "birth_date": "1994-03-08",
        "gender": "female", "citizenships": ["az"], "phone": phone, "address": "Canary street 1",
    });
    let created = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline", "settlement": "Ganja", "person": person}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let screening: Value = created.json().await.unwrap();
    let id = screening["id"].as_str().unwrap();
    let person_id = screening["person_id"].as_str().unwrap();
    assert!(
        !screening.to_string().contains(&given),
        "screenings carry only the code"
    );

    let read = stack
        .get(&officer, &format!("/v1/persons/{person_id}"))
        .await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["cache-control"], "no-store");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["details"]["given_name"], given.as_str());
    assert_eq!(read["details"]["birth_year"], 1994);

    stack
        .post(
            &officer,
            &format!("/v1/screenings/{id}/consents"),
            json!({"purpose": "assistance", "given": true, "method": "written"}),
        )
        .await;
    let decided: Value = stack
        .post(&officer, &format!("/v1/screenings/{id}/decisions"), {
            let mut decision = identified_decision();
            decision["reasons"] = json!(format!("{given} said the recruiter kept her passport"));
            decision
        })
        .await
        .json()
        .await
        .unwrap();
    let case: Value = stack
        .get(
            &officer,
            &format!("/v1/cases/{}", decided["case_id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        case["person_id"], person_id,
        "the case knows the person by id only"
    );
    let matches = stack
        .get(&officer, &format!("/v1/screenings/{id}/matches"))
        .await;
    assert_eq!(matches.status(), 200);

    let log: Value = stack
        .get(&officer, &format!("/v1/persons/{person_id}/access_log"))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["person.create", "person.read", "person.duplicate_search"]
    );

    let analyst = stack.token(ANALYST, organization);
    stack
        .summary_until(&analyst, "", |summary| summary["cases_total"] == 1)
        .await;

    let logs = haven_e2e::logs().text();
    for secret in [
        given.as_str(),
        family.as_str(),
        phone.as_str(),
        "Canary street",
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs");
    }
    let stored = stored_bytes(&stack).await;
    assert!(
        contains(&stored, "Gəncə"),
        "the check sees what is stored in the clear (the gazetteer's name of Ganja)"
    );
    for secret in [
        given.as_str(),
        family.as_str(),
        phone.as_str(),
        "Canary street",
    ] {
        assert!(
            !contains(&stored, secret),
            "{secret} is stored in the clear"
        );
    }
    stack.stop().await;
}

async fn erasure_removes_a_person_for_good(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    let admin = stack.token(&["admin"], organization);
    let person = json!({"given_name": "Aynur", "family_name": "Məmmədova", "birth_year": 1994});
    let first: Value = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "hotline", "person": person}),
        )
        .await
        .json()
        .await
        .unwrap();
    let twin = json!({"given_name": "Айнур", "family_name": "Мамедова", "birth_year": 1994});
    let second: Value = stack
        .post(
            &officer,
            "/v1/screenings",
            json!({"referral_source": "police", "person": twin}),
        )
        .await
        .json()
        .await
        .unwrap();
    let matches: Value = stack
        .get(
            &officer,
            &format!("/v1/screenings/{}/matches", second["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        matches["items"][0]["person_id"], first["person_id"],
        "found across scripts"
    );
    assert_eq!(matches["items"][0]["kind"], "full_name");

    let person_id = first["person_id"].as_str().unwrap();
    let no_reason = stack
        .http
        .delete(stack.url(&format!("/v1/persons/{person_id}")))
        .bearer_auth(&admin)
        .json(&json!({"reason": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_reason.status(), 400);
    let erased = stack
        .http
        .delete(stack.url(&format!("/v1/persons/{person_id}")))
        .bearer_auth(&admin)
        .json(&json!({"reason": "request of the data subject"}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    let erased: Value = erased.json().await.unwrap();
    assert_eq!(erased["erased"], true);
    assert!(erased["details"].is_null());
    assert_eq!(erased["code"], first["person_code"]);

    let after: Value = stack
        .get(&officer, &format!("/v1/persons/{person_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(after["details"].is_null());
    let matches: Value = stack
        .get(
            &officer,
            &format!("/v1/screenings/{}/matches", second["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        matches["items"].as_array().unwrap().is_empty(),
        "the erased person left the index"
    );
    stack.stop().await;
}

async fn a_case_moves_through_its_workflow_and_one_of_two_caseworkers_wins(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(OFFICER, organization);
    let (_, case) = stack.identified_case(&officer).await;
    let path = format!("/v1/cases/{case}");
    let first = stack.token(CASE_WORKER, organization);
    let second = stack.token(&["case_worker"], organization);
    let move_to = |token: &str, etag: Option<&str>, stage: &str| {
        let mut request = stack
            .http
            .post(stack.url(&format!("{path}/stage")))
            .bearer_auth(token)
            .json(&json!({"stage": stage}));
        if let Some(etag) = etag {
            request = request.header("if-match", etag);
        }
        request.send()
    };
    let read = stack.get(&first, &path).await;
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();

    assert_eq!(
        move_to(&first, None, "assessment").await.unwrap().status(),
        428
    );
    let skipping = move_to(&first, Some(&etag), "services").await.unwrap();
    assert_eq!(skipping.status(), 409);
    let problem: Value = skipping.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("`new`"),
        "names the current stage: {problem}"
    );

    // Both caseworkers read the same version; exactly one move wins.
    let (a, b) = tokio::join!(
        move_to(&first, Some(&etag), "assessment"),
        move_to(&second, Some(&etag), "assessment")
    );
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 412]);

    let mut etag = stack.get(&first, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    for stage in ["plan", "services", "monitoring"] {
        let moved = move_to(&first, Some(&etag), stage).await.unwrap();
        assert_eq!(moved.status(), 200, "{stage}");
        etag = moved.headers()["etag"].to_str().unwrap().to_owned();
        let case: Value = moved.json().await.unwrap();
        assert_eq!(case["stage"], stage);
    }
    assert_eq!(
        move_to(&first, Some(&etag), "closed")
            .await
            .unwrap()
            .status(),
        409,
        "closing needs its own approval"
    );
    stack.stop().await;
}

haven_e2e::on_both_backends! {
    rest_path_opens_one_case_and_reporting_counts_it,
    grpc_path_opens_one_case_and_reporting_counts_it,
    callers_get_clear_errors_and_nothing_leaks_across_organizations,
    one_trace_id_runs_from_the_gateway_through_the_services,
    a_sealed_case_is_readable_only_by_admins_and_auditors,
    personal_data_never_reaches_logs_or_storage_in_the_clear,
    erasure_removes_a_person_for_good,
    a_case_moves_through_its_workflow_and_one_of_two_caseworkers_wins,
}
