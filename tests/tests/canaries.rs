//! A canary in every free-text and personal field the API accepts, and nowhere it
//! should not be.
//!
//! The fields are found by walking the OpenAPI document the gateway serves: every
//! string property of every write route's body that is not an enum, a date, a time or
//! an id. A scenario drives the whole path (screening, consent, decision, case, plan,
//! services, payments, follow-ups, notes, transfer, closure, reopening, referrals,
//! sealing, erasure) and every body it sends has each such field replaced by a canary
//! of its own. A field the service refuses to take as free text (a code, a country, a
//! settlement of the gazetteer) is put back and counted as checked. The test fails
//! when a route has a free-text field that the scenario never reached, so a new field
//! cannot be left out.
//!
//! Then it looks for every accepted canary where none may be: the stored bytes (the
//! SQLite files with their WAL, or every row and every file of the Postgres cluster,
//! WAL included), the logs, the metrics, the event feeds of every service as every
//! role, and every error body the scenario received. The only place a canary may
//! appear is an authorised, audited read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_auth::Role;
use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized, on_both_backends};
use haven_proto::common::v1::WatchEventsRequest;
use haven_proto::common::v1::event_feed_service_client::EventFeedServiceClient;

/// Routes whose bodies describe organisations and their offer, not people: their
/// free text (names, addresses, opening hours of facilities) is public by intent.
const DIRECTORY_ROUTES: &[&str] = &[
    "/v1/organizations",
    "/v1/facilities",
    "/v1/facilities/{id}",
    "/v1/indicator_sets",
    "/v1/exports/ctdc",
    "/v1/releases/private_counts",
];

/// Free strings that name staff, not the people assisted: user ids of caseworkers.
const STAFF_FIELDS: &[&str] = &["caseworkers.[]", "assigned_to"];

/// Walks the OpenAPI document: for each write route (`METHOD path`), the paths of
/// its free-text string fields, with `[]` for array items.
fn free_text_fields(openapi: &Value) -> BTreeMap<String, Vec<String>> {
    let schemas = &openapi["components"]["schemas"];
    let mut routes = BTreeMap::new();
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() || DIRECTORY_ROUTES.contains(&path.as_str()) {
                continue;
            }
            let mut fields = Vec::new();
            walk_schema(schemas, schema, &mut Vec::new(), &mut fields, 0);
            fields.retain(|field| !STAFF_FIELDS.contains(&field.as_str()));
            if !fields.is_empty() {
                routes.insert(format!("{} {path}", method.to_uppercase()), fields);
            }
        }
    }
    routes
}

fn walk_schema(
    schemas: &Value,
    schema: &Value,
    path: &mut Vec<String>,
    fields: &mut Vec<String>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    let schema = match schema["$ref"].as_str() {
        Some(reference) => &schemas[reference.rsplit('/').next().unwrap()],
        None => schema,
    };
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for inner in schema[combinator].as_array().into_iter().flatten() {
            walk_schema(schemas, inner, path, fields, depth + 1);
        }
    }
    let kind = match &schema["type"] {
        Value::String(kind) => Some(kind.as_str()),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null"),
        _ => None,
    };
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            path.push(name.clone());
            walk_schema(schemas, property, path, fields, depth + 1);
            path.pop();
        }
    } else if kind == Some("array") {
        path.push("[]".to_owned());
        walk_schema(schemas, &schema["items"], path, fields, depth + 1);
        path.pop();
    } else if kind == Some("string") && schema["enum"].is_null() && schema["format"].is_null() {
        let field = path.join(".");
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
}

/// The scenario's record of what it sent.
struct Canaries {
    tag: String,
    openapi_fields: BTreeMap<String, Vec<String>>,
    /// Canaries the services accepted, by route and field.
    accepted: BTreeMap<String, String>,
    /// `route field` pairs the services refused as free text.
    refused: BTreeSet<String>,
    /// Every body of an error response.
    error_bodies: Vec<String>,
    issued: usize,
}

impl Canaries {
    fn next_canary(&mut self) -> String {
        self.issued += 1;
        format!("Cnry {:03} {}", self.issued, self.tag)
    }

    fn all(&self) -> Vec<&str> {
        self.accepted.values().map(String::as_str).collect()
    }
}

/// Sets `value` at a dotted `field` path in `body` (`[]` reaches every element of
/// an array already there; a missing array of strings is created). Returns false if
/// the path cannot be reached (an array of objects the body does not have).
fn set_at(body: &mut Value, field: &[&str], value: &str) -> bool {
    let Some((head, rest)) = field.split_first() else {
        *body = json!(value);
        return true;
    };
    if *head == "[]" {
        match body {
            Value::Array(items) if !items.is_empty() => {
                items.iter_mut().all(|item| set_at(item, rest, value))
            }
            Value::Array(items) if rest.is_empty() => {
                items.push(json!(value));
                true
            }
            _ if rest.is_empty() => {
                *body = json!([value]);
                true
            }
            _ => false,
        }
    } else {
        if !body.is_object() {
            *body = json!({});
        }
        let next = body.as_object_mut().unwrap().entry(head.to_string());
        let slot = next.or_insert_with(|| {
            if rest.first() == Some(&"[]") {
                json!([])
            } else {
                json!({})
            }
        });
        set_at(slot, rest, value)
    }
}

/// `goals[0].actions[1].due_on` → `goals.[].actions.[].due_on`.
fn field_path(error_field: &str) -> String {
    let mut path = String::new();
    for part in error_field.split('.') {
        if !path.is_empty() {
            path.push('.');
        }
        match part.split_once('[') {
            Some((name, _)) => {
                path.push_str(name);
                path.push_str(".[]");
            }
            None => path.push_str(part),
        }
    }
    path
}

impl Canaries {
    /// Sends `body` to `route` (`METHOD /v1/template`) at `path` with every free-text
    /// field replaced by a canary; fields the service refuses as free text are put
    /// back one answer at a time. Returns the successful answer.
    async fn send(
        &mut self,
        stack: &TestStack,
        token: &str,
        route: &str,
        path: &str,
        if_match: Option<&str>,
        base: Value,
    ) -> (String, Value) {
        let fields = self.openapi_fields.get(route).cloned().unwrap_or_default();
        let mut kept: Vec<(String, String)> = Vec::new();
        for field in &fields {
            if !self.refused.contains(&format!("{route} {field}")) {
                let canary = self.next_canary();
                kept.push((field.clone(), canary));
            }
        }
        let method =
            reqwest::Method::from_bytes(route.split(' ').next().unwrap().as_bytes()).unwrap();
        let mut current_etag = if_match.map(str::to_owned);
        for _attempt in 0..40 {
            let mut body = base.clone();
            let mut applied = Vec::new();
            for (field, canary) in &kept {
                let parts: Vec<&str> = field.split('.').collect();
                if set_at(&mut body, &parts, canary) {
                    applied.push((field.clone(), canary.clone()));
                }
            }
            let mut request = stack
                .http
                .request(method.clone(), stack.url(path))
                .bearer_auth(token)
                .json(&body);
            if let Some(etag) = &current_etag {
                request = request.header("if-match", etag);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let etag = response
                .headers()
                .get("etag")
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let text = response.text().await.unwrap();
            if status.is_success() {
                for (field, canary) in applied {
                    self.accepted.insert(format!("{route} {field}"), canary);
                }
                return (etag, serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            self.error_bodies.push(text.clone());
            if status == 428 && current_etag.is_none() {
                current_etag = Some(etag_for(stack, token, path).await);
                continue;
            }
            let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            // An error names a field, or the array or object holding it.
            let named: Vec<String> = problem["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|error| error["field"].as_str())
                .map(field_path)
                .collect();
            let refused: Vec<String> = kept
                .iter()
                .map(|(field, _)| field.clone())
                .filter(|field| {
                    let field = field.replace(".[]", "");
                    named.iter().any(|name| {
                        let name = name.replace(".[]", "");
                        field == name || field.starts_with(&format!("{name}."))
                    })
                })
                .collect();
            assert!(
                status == 400 && !refused.is_empty(),
                "{route} at {path}: {status} {text}"
            );
            for field in refused {
                kept.retain(|(kept, _)| *kept != field);
                self.refused.insert(format!("{route} {field}"));
            }
        }
        panic!("{route} never accepted a body");
    }
}

/// The ETag of the record a verb route changes: its path without the verb, or the
/// record above that (`/v1/referrals/{id}/decline` → `/v1/referrals/{id}`).
async fn etag_for(stack: &TestStack, token: &str, path: &str) -> String {
    let mut record = path;
    while let Some((parent, _)) = record.rsplit_once('/') {
        record = parent;
        let response = stack.get(token, record).await;
        if let Some(etag) = response.headers().get("etag") {
            return etag.to_str().unwrap().to_owned();
        }
    }
    panic!("no ETag above {path}");
}

/// POSTs a verb that takes no text, with the record's ETag.
async fn answer(stack: &TestStack, token: &str, path: &str) {
    let etag = etag_for(stack, token, path).await;
    let response = stack
        .http
        .post(stack.url(path))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
}

async fn etag_of(stack: &TestStack, token: &str, path: &str) -> String {
    let response = stack.get(token, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// Drives every route that takes text about a person, with canaries.
/// The records the scenario made, for the reads that follow it.
struct Made {
    owner: Uuid,
    partner: Uuid,
    ids: Vec<String>,
}

async fn scenario(stack: &TestStack, canaries: &mut Canaries) -> Made {
    let owner = Uuid::new_v4();
    let partner = Uuid::new_v4();
    let team = stack.token_as(
        "worker",
        &["intake_officer", "case_worker", "supervisor"],
        owner,
    );
    let boss = stack.token_as("boss", &["supervisor"], owner);
    let admin = stack.token_as("owner-admin", &["admin"], owner);
    let partner_admin = stack.token_as("partner-admin", &["admin"], partner);
    let partner_coordinator = stack.token_as("coordinator", &["referral_coordinator"], partner);
    let today = time::OffsetDateTime::now_utc().date();
    let later = (today + time::Duration::days(30)).to_string();

    // The partner's shelter, for referrals (directory data, no canaries).
    let registered = stack
        .post(
            &partner_admin,
            "/v1/organizations",
            json!({"id": partner, "name": "Partner NGO", "organization_type": "ngo"}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let facility: Value = stack
        .post(
            &partner_coordinator,
            "/v1/facilities",
            json!({
            "name": "Partner shelter", "settlement": "Sumqayıt", "service_types": ["shelter"],
            "capacity_total": 10, "accepts": {"genders": ["female"]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let facility_id = facility["id"].as_str().unwrap().to_owned();

    // Intake.
    let screening_body = json!({
        "referral_source": "hotline", "settlement": "Ganja", "language": "az", "is_minor": true,
        "guardian": {"name": "", "relationship": "parent", "contact": ""},
        "person": {"given_name": "", "family_name": "", "patronymic": "", "birth_date": "1994-03-08",
                   "gender": "female", "citizenships": ["az"], "languages": ["az"], "phone": "",
                   "address": "", "identity_document_number": ""},
        "indicators": {"indicator_set_version": 1, "answers": [{"code": "threats", "answer": "yes", "note": ""}]},
        "exploitation": {"types": ["forced_labour"], "local_categories": [], "means_of_control": ["debt_bondage"],
                         "recruitment_method": "job_offer", "relationship_to_recruiter": "acquaintance",
                         "countries_of_origin": ["AZ"], "countries_of_transit": ["GE"],
                         "countries_of_exploitation": ["TR"], "started": "2024-01", "ended": "2024-06"},
        "risk": {"level": "high", "factors": [], "immediate_needs": ["shelter"]},
    });
    let (etag, screening) = canaries
        .send(
            stack,
            &team,
            "POST /v1/screenings",
            "/v1/screenings",
            None,
            screening_body.clone(),
        )
        .await;
    let screening_id = screening["id"].as_str().unwrap().to_owned();
    let person_id = screening["person_id"].as_str().unwrap().to_owned();
    // An authorised, audited read returns what was typed.
    let read = stack
        .get(&team, &format!("/v1/persons/{person_id}"))
        .await
        .text()
        .await
        .unwrap();
    let given = &canaries.accepted["POST /v1/screenings person.given_name"];
    assert!(read.contains(given.as_str()), "{read}");
    let update = json!({"indicators": screening_body["indicators"], "exploitation": screening_body["exploitation"],
        "risk": screening_body["risk"]});
    canaries
        .send(
            stack,
            &team,
            "PATCH /v1/screenings/{id}",
            &format!("/v1/screenings/{screening_id}"),
            Some(&etag),
            update,
        )
        .await;
    for consent in [
        json!({"purpose": "assistance", "given": true, "method": "written", "by_guardian": true}),
        json!({"purpose": "data_sharing", "given": true, "method": "written", "by_guardian": true,
               "organization_types": ["ngo"]}),
    ] {
        let path = format!("/v1/screenings/{screening_id}/consents");
        canaries
            .send(
                stack,
                &team,
                "POST /v1/screenings/{id}/consents",
                &path,
                None,
                consent,
            )
            .await;
    }
    let (_, decided) = canaries
        .send(stack, &team, "POST /v1/screenings/{id}/decisions", &format!("/v1/screenings/{screening_id}/decisions"), None,
            json!({"stage": "identified", "deciding_organization_type": "police", "legal_basis": "", "reasons": ""}))
        .await;
    let case_id = decided["case_id"].as_str().expect("case opened").to_owned();
    let case_path = format!("/v1/cases/{case_id}");

    // The case: its team, flags, stages, plan, services, payments, follow-ups, notes.
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &team,
            "PATCH /v1/cases/{id}",
            &case_path,
            Some(&etag),
            json!({"caseworkers": ["worker"], "flags": ["minor"], "risk_level": "high"}),
        )
        .await;
    for stage in ["assessment", "plan"] {
        let etag = etag_of(stack, &team, &case_path).await;
        let moved = stack
            .http
            .post(stack.url(&format!("{case_path}/stage")))
            .bearer_auth(&team)
            .header("if-match", etag)
            .json(&json!({"stage": stage}))
            .send()
            .await
            .unwrap();
        assert_eq!(moved.status(), 200);
    }
    let plan = json!({"goals": [{"domain": "housing", "goal": "",
        "actions": [{"description": "", "responsible_organization_id": owner, "due_on": later}]}]});
    let plans = format!("{case_path}/plans");
    let (plan_etag, _) = canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/plans",
            &plans,
            None,
            plan.clone(),
        )
        .await;
    canaries
        .send(
            stack,
            &boss,
            "POST /v1/cases/{id}/plans/{plan_version}/reject",
            &format!("{plans}/1/reject"),
            Some(&plan_etag),
            json!({"comment": ""}),
        )
        .await;
    let (plan_etag, _) = canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/plans",
            &plans,
            None,
            plan,
        )
        .await;
    canaries
        .send(
            stack,
            &boss,
            "POST /v1/cases/{id}/plans/{plan_version}/approve",
            &format!("{plans}/2/approve"),
            Some(&plan_etag),
            json!({"comment": ""}),
        )
        .await;
    let (_, cash) = canaries
        .send(stack, &team, "POST /v1/cases/{id}/services", &format!("{case_path}/services"), None,
            json!({"type": "cash_assistance", "provider_organization_id": owner, "status": "delivered"}))
        .await;
    canaries
        .send(stack, &team, "POST /v1/cases/{id}/payments", &format!("{case_path}/payments"), None,
            json!({"amount": "150.00", "currency": "AZN", "paid_on": today.to_string(), "purpose": "", "service_id": cash["id"]}))
        .await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/follow_ups",
            &format!("{case_path}/follow_ups"),
            None,
            json!({"kind": "call", "due_on": later, "assigned_to": "worker"}),
        )
        .await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/notes",
            &format!("{case_path}/notes"),
            None,
            json!({"body": "", "visibility": "case_team"}),
        )
        .await;

    // Referrals to the partner: declined, cancelled, completed.
    let referral = json!({"case_id": case_id, "facility_id": facility_id, "service_type": "shelter",
        "purpose": "", "urgency": "urgent"});
    for (verb, token, body) in [
        ("decline", &partner_coordinator, json!({"reason": ""})),
        ("cancel", &team, json!({"reason": ""})),
    ] {
        let (_, sent) = canaries
            .send(
                stack,
                &team,
                "POST /v1/referrals",
                "/v1/referrals",
                None,
                referral.clone(),
            )
            .await;
        let id = sent["id"].as_str().unwrap();
        canaries
            .send(
                stack,
                token,
                &format!("POST /v1/referrals/{{id}}/{verb}"),
                &format!("/v1/referrals/{id}/{verb}"),
                None,
                body,
            )
            .await;
    }
    let (_, sent) = canaries
        .send(
            stack,
            &team,
            "POST /v1/referrals",
            "/v1/referrals",
            None,
            referral.clone(),
        )
        .await;
    let accepted_id = sent["id"].as_str().unwrap().to_owned();
    for verb in ["accept", "start"] {
        answer(
            stack,
            &partner_coordinator,
            &format!("/v1/referrals/{accepted_id}/{verb}"),
        )
        .await;
    }
    canaries
        .send(
            stack,
            &partner_coordinator,
            "POST /v1/referrals/{id}/complete",
            &format!("/v1/referrals/{accepted_id}/complete"),
            None,
            json!({"outcome": ""}),
        )
        .await;
    let (_, sent) = canaries
        .send(
            stack,
            &team,
            "POST /v1/referrals",
            "/v1/referrals",
            None,
            referral,
        )
        .await;
    let to_revoke = sent["id"].as_str().unwrap().to_owned();
    answer(
        stack,
        &partner_coordinator,
        &format!("/v1/referrals/{to_revoke}/accept"),
    )
    .await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/referrals/{id}/revoke",
            &format!("/v1/referrals/{to_revoke}/revoke"),
            None,
            json!({"reason": ""}),
        )
        .await;

    // A transfer the partner rejects.
    let (_, transfer) = canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/transfers",
            &format!("{case_path}/transfers"),
            None,
            json!({"to_organization_id": partner, "reason": ""}),
        )
        .await;
    let partner_supervisor = stack.token_as("partner-boss", &["supervisor"], partner);
    canaries
        .send(
            stack,
            &partner_supervisor,
            "POST /v1/transfers/{id}/reject",
            &format!("/v1/transfers/{}/reject", transfer["id"].as_str().unwrap()),
            None,
            json!({"comment": ""}),
        )
        .await;

    // Closure: rejected once, then approved; then the case reopens and is sealed.
    let closure = json!({"reason": "goals_achieved", "reason_text": "", "override_reason": ""});
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/closure",
            &format!("{case_path}/closure"),
            Some(&etag),
            closure.clone(),
        )
        .await;
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &boss,
            "POST /v1/cases/{id}/closure/reject",
            &format!("{case_path}/closure/reject"),
            Some(&etag),
            json!({"comment": ""}),
        )
        .await;
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/closure",
            &format!("{case_path}/closure"),
            Some(&etag),
            closure,
        )
        .await;
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &boss,
            "POST /v1/cases/{id}/closure/approve",
            &format!("{case_path}/closure/approve"),
            Some(&etag),
            json!({"comment": ""}),
        )
        .await;
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/reopen",
            &format!("{case_path}/reopen"),
            Some(&etag),
            json!({"reason": ""}),
        )
        .await;
    let etag = etag_of(stack, &team, &case_path).await;
    canaries
        .send(
            stack,
            &admin,
            "POST /v1/cases/{id}/seal",
            &format!("{case_path}/seal"),
            Some(&etag),
            json!({"legal_basis": ""}),
        )
        .await;

    // A transfer the partner accepts, of another case.
    let (_, other_case) = stack.identified_case(&team).await;
    let (_, transfer) = canaries
        .send(
            stack,
            &team,
            "POST /v1/cases/{id}/transfers",
            &format!("/v1/cases/{other_case}/transfers"),
            None,
            json!({"to_organization_id": partner, "reason": ""}),
        )
        .await;
    canaries
        .send(
            stack,
            &partner_supervisor,
            "POST /v1/transfers/{id}/accept",
            &format!("/v1/transfers/{}/accept", transfer["id"].as_str().unwrap()),
            None,
            json!({"comment": ""}),
        )
        .await;

    // Another person, erased with a reason.
    let (_, other) = canaries
        .send(
            stack,
            &team,
            "POST /v1/screenings",
            "/v1/screenings",
            None,
            screening_body,
        )
        .await;
    let other_person = other["person_id"].as_str().unwrap();
    canaries
        .send(
            stack,
            &admin,
            "DELETE /v1/persons/{id}",
            &format!("/v1/persons/{other_person}"),
            None,
            json!({"reason": ""}),
        )
        .await;
    Made {
        owner,
        partner,
        ids: vec![
            screening_id,
            case_id,
            person_id,
            accepted_id,
            to_revoke,
            facility_id,
            other_case,
            owner.to_string(),
            partner.to_string(),
        ],
    }
}

/// Request ids of every audit entry of every service database.
async fn audited_request_ids(stack: &TestStack) -> BTreeSet<String> {
    use sqlx::Connection as _;
    let mut ids = BTreeSet::new();
    match &stack.settings.database.url {
        None => {
            for entry in std::fs::read_dir(&stack.settings.data_dir)
                .unwrap()
                .flatten()
            {
                let path = entry.path();
                if path.extension().is_none_or(|extension| extension != "db") {
                    continue;
                }
                let url = format!("sqlite://{}?mode=ro", path.display());
                let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let rows: Result<Vec<(String,)>, _> =
                    sqlx::query_as("SELECT request_id FROM audit_log")
                        .fetch_all(&mut connection)
                        .await;
                ids.extend(rows.unwrap_or_default().into_iter().map(|(id,)| id));
            }
        }
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            let schemas: Vec<(String,)> = sqlx::query_as(
                "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'audit_log'",
            )
            .fetch_all(&mut connection)
            .await
            .unwrap();
            for (schema,) in schemas {
                let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT request_id FROM \"{schema}\".audit_log"
                )))
                .fetch_all(&mut connection)
                .await
                .unwrap();
                ids.extend(rows.into_iter().map(|(id,)| id));
            }
        }
    }
    ids
}

/// Reads every GET route of the route table as `token`, with each path parameter
/// tried with each of `ids`, under a request id of its own. Returns the reads that
/// answered with a canary, by request id.
async fn reads_returning_canaries(
    stack: &TestStack,
    token: &str,
    ids: &[String],
    canaries: &[&str],
    label: &str,
) -> BTreeMap<String, String> {
    let mut returned = BTreeMap::new();
    for rule in haven_gateway::policy::ROUTES
        .iter()
        .filter(|rule| rule.method == "GET")
    {
        let parameters = rule.path.matches('{').count();
        let candidates: Vec<String> = if parameters == 0 {
            vec![rule.path.to_owned()]
        } else {
            ids.iter()
                .chain(std::iter::once(&"1".to_owned()))
                .map(|id| {
                    let mut path = rule.path.to_owned();
                    while let (Some(open), Some(close)) = (path.find('{'), path.find('}')) {
                        path.replace_range(open..=close, id);
                    }
                    path
                })
                .collect()
        };
        for path in candidates {
            let request_id = format!("{label}-{}", Uuid::new_v4().simple());
            let response = stack
                .http
                .get(stack.url(&path))
                .bearer_auth(token)
                .header("x-request-id", &request_id)
                .send()
                .await
                .unwrap();
            let body = response.text().await.unwrap();
            if !found_in(body.as_bytes(), canaries).is_empty() {
                returned.insert(request_id, path);
            }
        }
    }
    returned
}

/// Every event of every feed, as `token` receives it, as text.
async fn feed_text(stack: &TestStack, token: &str) -> String {
    let mut text = String::new();
    for service in [
        ServiceName::Intake,
        ServiceName::Case,
        ServiceName::Referral,
    ] {
        let mut client = EventFeedServiceClient::new(stack.channel(service).await);
        let Ok(stream) = client
            .watch_events(authorized(WatchEventsRequest { after_sequence: 0 }, token))
            .await
        else {
            continue;
        };
        let mut stream = stream.into_inner();
        while let Ok(Ok(Some(message))) =
            tokio::time::timeout(Duration::from_millis(700), stream.message()).await
        {
            text.push_str(&format!("{message:?}\n"));
        }
    }
    text
}

/// Every file below `dir`, concatenated.
fn files_below(dir: &std::path::Path, bytes: &mut Vec<u8>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_below(&path, bytes);
        } else if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
}

/// The bytes the stack stored: the SQLite files with their WAL; on Postgres every
/// row of every Haven schema as text, and every file of the cluster (WAL included).
async fn stored_bytes(stack: &TestStack) -> Vec<u8> {
    let mut bytes = Vec::new();
    match &stack.settings.database.url {
        None => files_below(&stack.settings.data_dir, &mut bytes),
        Some(url) => {
            use sqlx::Connection as _;
            let mut connection = sqlx::PgConnection::connect(url.expose()).await.unwrap();
            // Flush what is buffered so the files hold it.
            let _ = sqlx::query("CHECKPOINT").execute(&mut connection).await;
            let tables: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                 WHERE table_schema IN ('intake', 'case', 'referral', 'reporting')",
            )
            .fetch_all(&mut connection)
            .await
            .unwrap();
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
            let (data_directory,): (String,) = sqlx::query_as("SHOW data_directory")
                .fetch_one(&mut connection)
                .await
                .unwrap();
            files_below(std::path::Path::new(&data_directory), &mut bytes);
        }
    }
    bytes
}

fn found_in<'a>(haystack: &[u8], canaries: &[&'a str]) -> Vec<&'a str> {
    canaries
        .iter()
        .copied()
        .filter(|canary| memchr::memmem::find(haystack, canary.as_bytes()).is_some())
        .collect()
}

async fn no_canary_leaves_an_authorised_read(stack: TestStack) {
    let openapi: Value = stack
        .http
        .get(stack.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut canaries = Canaries {
        tag: Uuid::new_v4().simple().to_string()[..12].to_owned(),
        openapi_fields: free_text_fields(&openapi),
        accepted: BTreeMap::new(),
        refused: BTreeSet::new(),
        error_bodies: Vec::new(),
        issued: 0,
    };
    let made = scenario(&stack, &mut canaries).await;
    let owner = made.owner;

    // Every free-text field of every route was reached.
    let unreached: Vec<String> = canaries
        .openapi_fields
        .iter()
        .flat_map(|(route, fields)| fields.iter().map(move |field| format!("{route} {field}")))
        .filter(|key| !canaries.accepted.contains_key(key) && !canaries.refused.contains(key))
        .collect();
    assert!(
        unreached.is_empty(),
        "the scenario never sent a canary in: {unreached:#?}"
    );
    let all = canaries.all();
    assert!(all.len() > 30, "{:#?}", canaries.accepted);

    let stored = stored_bytes(&stack).await;
    assert!(
        !found_in(&stored, &["Partner shelter"]).is_empty(),
        "the check sees what is stored in the clear"
    );
    let leaked = found_in(&stored, &all);
    let leaked_fields: Vec<&String> = canaries
        .accepted
        .iter()
        .filter(|(_, canary)| leaked.contains(&canary.as_str()))
        .map(|(field, _)| field)
        .collect();
    assert!(
        leaked_fields.is_empty(),
        "stored in the clear: {leaked_fields:#?}"
    );

    let logs = haven_e2e::logs().text();
    assert!(found_in(logs.as_bytes(), &all).is_empty(), "in the logs");

    for body in &canaries.error_bodies {
        assert!(
            found_in(body.as_bytes(), &all).is_empty(),
            "in an error: {body}"
        );
    }

    let metrics = stack
        .http
        .get(&stack.stack.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        found_in(metrics.as_bytes(), &all).is_empty(),
        "in the metrics"
    );

    let organizations = [owner, Uuid::new_v4()];
    for role in Role::ALL.into_iter().filter(|role| *role != Role::Service) {
        for organization in organizations {
            let token = stack.token(&[role.as_str()], organization);
            let feed = feed_text(&stack, &token).await;
            assert!(
                found_in(feed.as_bytes(), &all).is_empty(),
                "{role:?} feed: {feed}"
            );
        }
    }
    let service =
        haven_auth::keys::ServiceTokens::new(&stack.settings.auth, &stack.keys, "reporting")
            .token()
            .unwrap();
    let feed = feed_text(&stack, &service).await;
    assert!(!feed.is_empty(), "the services' own feed has the events");
    assert!(
        found_in(feed.as_bytes(), &all).is_empty(),
        "service feed: {feed}"
    );

    // Every read that hands back what a person typed is an audited read: walk every
    // GET route as the owner's staff and the partner's, and find each such read's
    // request id in an audit log.
    let owner_staff = stack.token(
        &["admin", "supervisor", "case_worker", "intake_officer"],
        owner,
    );
    let partner_staff = stack.token(
        &["admin", "supervisor", "referral_coordinator"],
        made.partner,
    );
    let mut returned =
        reads_returning_canaries(&stack, &owner_staff, &made.ids, &all, "owner").await;
    returned
        .extend(reads_returning_canaries(&stack, &partner_staff, &made.ids, &all, "partner").await);
    assert!(
        returned.len() >= 5,
        "reads returned canaries: {returned:#?}"
    );
    let audited = audited_request_ids(&stack).await;
    let unaudited: Vec<&String> = returned
        .iter()
        .filter(|(request_id, _)| !audited.contains(*request_id))
        .map(|(_, path)| path)
        .collect();
    assert!(
        unaudited.is_empty(),
        "read without an audit entry: {unaudited:#?}"
    );
    stack.stop().await;
}

on_both_backends!(no_canary_leaves_an_authorised_read);
