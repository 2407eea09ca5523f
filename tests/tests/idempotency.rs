//! `Idempotency-Key` kept by the owning service, on the real stack: a create that
//! reached its service but whose answer was lost with the gateway (the request is
//! sent to the service as the gateway forwards it, and its answer dropped) is
//! replayed at once through the gateway, never booked twice; ten identical retries at
//! once make one payment and one referral, with no server error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use haven_cli::ServiceName;
use haven_proto::case::v1 as case_pb;
use haven_proto::case::v1::case_service_client::CaseServiceClient;
use haven_proto::referral::v1 as referral_pb;
use haven_proto::referral::v1::referral_service_client::ReferralServiceClient;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use haven_e2e::{TestStack, authorized};

/// A retry after a lost answer must not wait for anything to expire.
const PROMPT: Duration = Duration::from_secs(3);

/// A sending organisation with an identified person's case (consent to share given)
/// and a receiving shelter.
struct Setting {
    worker: String,
    coordinator: String,
    case_id: String,
    facility_id: String,
}

async fn setting(stack: &TestStack) -> Setting {
    let sender = Uuid::new_v4();
    let receiver = Uuid::new_v4();
    let admin = stack.token_as("directory-admin", &["admin"], receiver);
    let registered = stack
        .post(&admin, "/v1/organizations", json!({"id": receiver, "name": format!("Shelter NGO {receiver}"), "organization_type": "ngo"}))
        .await;
    assert_eq!(registered.status(), 201);
    let coordinator = stack.token_as("farida", &["referral_coordinator"], receiver);
    let facility: Value = stack
        .post(&coordinator, "/v1/facilities", shelter(true))
        .await
        .json()
        .await
        .unwrap();
    let officer = stack.token_as("officer", &["admin", "intake_officer"], sender);
    let (screening, case_id) = stack.identified_case(&officer).await;
    let shared = stack
        .post(
            &officer,
            &format!("/v1/screenings/{screening}/consents"),
            json!({"purpose": "data_sharing", "given": true, "method": "written"}),
        )
        .await;
    assert_eq!(shared.status(), 201);
    Setting {
        worker: stack.token_as("aysel", &["case_worker"], sender),
        coordinator,
        case_id,
        facility_id: facility["id"].as_str().unwrap().to_owned(),
    }
}

/// The receiving shelter, taking referrals or not.
fn shelter(active: bool) -> Value {
    json!({
        "name": "Women's shelter Sumqayıt", "settlement": "Sumqayıt", "service_types": ["shelter"],
        "capacity_total": 5, "accepts": {"genders": ["female"], "families": true}, "languages": ["az"],
        "opening_hours": "24/7", "contact_phone": "+994 18 000 00 00", "active": active})
}

fn today() -> String {
    OffsetDateTime::now_utc().date().to_string()
}

fn payment_body() -> Value {
    json!({"amount": "150.00", "currency": "AZN", "paid_on": today(), "purpose": "rent"})
}

fn referral_body(setting: &Setting) -> Value {
    json!({"case_id": setting.case_id, "facility_id": setting.facility_id,
        "service_type": "shelter", "purpose": "safe accommodation", "urgency": "urgent"})
}

async fn post_with_key(
    stack: &TestStack,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    stack
        .http
        .post(stack.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("idempotency-replayed")
        .is_some_and(|value| value == "true")
}

async fn payments(stack: &TestStack, setting: &Setting) -> Vec<Value> {
    let ledger: Value = stack
        .get(
            &setting.worker,
            &format!("/v1/cases/{}/payments", setting.case_id),
        )
        .await
        .json()
        .await
        .unwrap();
    ledger["items"].as_array().unwrap().clone()
}

async fn referrals(stack: &TestStack, setting: &Setting) -> Vec<Value> {
    let page: Value = stack
        .get(
            &setting.worker,
            &format!("/v1/referrals?case_id={}", setting.case_id),
        )
        .await
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

/// The gateway forwarded a payment with key K, the case service committed it, and
/// the gateway died before answering: the client retries K through a gateway that
/// never saw it, and gets the first payment at once.
async fn a_payment_whose_answer_was_lost_is_replayed_at_once(stack: TestStack) {
    let setting = setting(&stack).await;
    let key = "payment-after-a-gateway-crash";
    let mut case = CaseServiceClient::new(stack.channel(ServiceName::Case).await);
    let forwarded = case_pb::RecordPaymentRequest {
        case_id: setting.case_id.clone(),
        amount: "150.00".to_owned(),
        currency: "AZN".to_owned(),
        paid_on: today(),
        purpose: "rent".to_owned(),
        idempotency_key: key.to_owned(),
        ..Default::default()
    };
    let committed = case
        .record_payment(authorized(forwarded, &setting.worker))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();

    let started = Instant::now();
    let retry = post_with_key(
        &stack,
        &setting.worker,
        &format!("/v1/cases/{}/payments", setting.case_id),
        key,
        &payment_body(),
    )
    .await;
    assert!(
        started.elapsed() < PROMPT,
        "the retry waited {:?}",
        started.elapsed()
    );
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry));
    let answered: Value = retry.json().await.unwrap();
    assert_eq!(answered["id"], committed.id);
    assert_eq!(
        payments(&stack, &setting).await.len(),
        1,
        "one payment of 150.00 AZN"
    );

    // The same key for another payment is refused, and books nothing.
    let other =
        json!({"amount": "99.00", "currency": "AZN", "paid_on": today(), "purpose": "rent"});
    let refused = post_with_key(
        &stack,
        &setting.worker,
        &format!("/v1/cases/{}/payments", setting.case_id),
        key,
        &other,
    )
    .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(payments(&stack, &setting).await.len(), 1);
}

/// The same for a referral: the referral service committed it, the answer was lost.
async fn a_referral_whose_answer_was_lost_is_replayed_at_once(stack: TestStack) {
    let setting = setting(&stack).await;
    let key = "referral-after-a-gateway-crash";
    let mut referral = ReferralServiceClient::new(stack.channel(ServiceName::Referral).await);
    let forwarded = referral_pb::CreateReferralRequest {
        case_id: setting.case_id.clone(),
        facility_id: setting.facility_id.clone(),
        service_type: "shelter".to_owned(),
        purpose: "safe accommodation".to_owned(),
        urgency: referral_pb::Urgency::Urgent.into(),
        idempotency_key: key.to_owned(),
        ..Default::default()
    };
    let committed = referral
        .create_referral(authorized(forwarded, &setting.worker))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();

    let started = Instant::now();
    let retry = post_with_key(
        &stack,
        &setting.worker,
        "/v1/referrals",
        key,
        &referral_body(&setting),
    )
    .await;
    assert!(
        started.elapsed() < PROMPT,
        "the retry waited {:?}",
        started.elapsed()
    );
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry));
    let answered: Value = retry.json().await.unwrap();
    assert_eq!(answered["id"], committed.id);
    assert_eq!(referrals(&stack, &setting).await.len(), 1);

    // The shelter stops taking referrals: a new one is refused, but a retry of the
    // one that was made still gets it, not a refusal the client would read as "no
    // referral".
    let path = format!("/v1/facilities/{}", setting.facility_id);
    let etag = stack.get(&setting.coordinator, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let closed = stack
        .http
        .patch(stack.url(&path))
        .bearer_auth(&setting.coordinator)
        .header("if-match", etag)
        .json(&shelter(false))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200, "{}", closed.text().await.unwrap());
    let refused = post_with_key(
        &stack,
        &setting.worker,
        "/v1/referrals",
        "another",
        &referral_body(&setting),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let retry = post_with_key(
        &stack,
        &setting.worker,
        "/v1/referrals",
        key,
        &referral_body(&setting),
    )
    .await;
    assert_eq!(retry.status(), 201);
    assert!(replayed(&retry));
    let answered: Value = retry.json().await.unwrap();
    assert_eq!(answered["id"], committed.id);
}

/// Ten identical requests with one key at once: one record, each answered with it
/// (or told to retry), never a server error.
async fn ten_identical_retries_at_once_make_one_payment_and_one_referral(stack: TestStack) {
    let setting = setting(&stack).await;
    let payment_path = format!("/v1/cases/{}/payments", setting.case_id);
    let referral_body = referral_body(&setting);
    for (path, body, key) in [
        (payment_path.as_str(), payment_body(), "ten-payments"),
        ("/v1/referrals", referral_body, "ten-referrals"),
    ] {
        let answers = futures::future::join_all((0..10).map(|_| async {
            let response = post_with_key(&stack, &setting.worker, path, key, &body).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }))
        .await;
        let mut ids = std::collections::BTreeSet::new();
        for (status, answer) in &answers {
            assert!(matches!(status, 201 | 409), "{path}: {status} {answer}");
            if *status == 201 {
                ids.insert(answer["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), 1, "{path}: {answers:?}");
    }
    assert_eq!(payments(&stack, &setting).await.len(), 1);
    assert_eq!(referrals(&stack, &setting).await.len(), 1);
}

haven_e2e::on_both_backends! {
    a_payment_whose_answer_was_lost_is_replayed_at_once,
    a_referral_whose_answer_was_lost_is_replayed_at_once,
    ten_identical_retries_at_once_make_one_payment_and_one_referral,
}
