//! `haven keys rotate` on a running deployment: the services pick the new master
//! key version up without a restart. Records written before the rotation (whose
//! data keys it re-wrapped under the new version) and after it read back through
//! the gateway, never a 500; and what is written after it is wrapped under the new
//! version, so removing the old one from the keyring loses nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use haven_crypto::{KeyWrapper as _, MASTER_KEYRING_FILE, MasterKeyring, RELOAD_INTERVAL};
use haven_e2e::TestStack;

/// A screening of a person with a name and a guardian: both encrypted, under the
/// person's and the screening's data keys. `(screening id, person id)`.
async fn screen(stack: &TestStack, token: &str, given_name: &str) -> (String, String) {
    let created = stack
        .post(
            token,
            "/v1/screenings",
            json!({
                "referral_source": "hotline", "settlement": "Gəncə", "is_minor": true,
                "guardian": {"name": format!("Guardian of {given_name}"), "relationship": "parent"},
                "person": {"given_name": given_name, "family_name": "Məmmədova",
                    "birth_year": 2010, "gender": "female"},
            }),
        )
        .await;
    let status = created.status();
    let screening: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "{screening}");
    (
        screening["id"].as_str().unwrap().to_owned(),
        screening["person_id"].as_str().unwrap().to_owned(),
    )
}

/// Reads the screening and its person back and checks the decrypted texts.
async fn read_back(stack: &TestStack, token: &str, record: &(String, String), given_name: &str) {
    let (screening, person) = record;
    let response = stack
        .get(token, &format!("/v1/screenings/{screening}"))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 200, "screening of {given_name}: {body}");
    assert_eq!(
        body["guardian"]["name"],
        format!("Guardian of {given_name}"),
        "{body}"
    );
    let response = stack.get(token, &format!("/v1/persons/{person}")).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 200, "person {given_name}: {body}");
    assert_eq!(body["details"]["given_name"], given_name, "{body}");
}

async fn a_rotation_is_picked_up_by_running_services_without_a_restart(stack: TestStack) {
    let token = stack.token(&["intake_officer", "case_worker"], Uuid::new_v4());
    let before = screen(&stack, &token, "Aynur").await;
    read_back(&stack, &token, &before, "Aynur").await;

    // What `haven keys rotate` runs, against the running deployment's keys.
    haven_cli::operations::rotate_keys(&stack.settings)
        .await
        .unwrap();
    read_back(&stack, &token, &before, "Aynur").await;
    let after = screen(&stack, &token, "Leyla").await;
    read_back(&stack, &token, &after, "Leyla").await;

    // Drop version 1 from the keyring without re-wrapping anything: only what was
    // wrapped under version 2 can still be read.
    let path = haven_auth::keys::keys_dir(&stack.settings.data_dir).join(MASTER_KEYRING_FILE);
    let mut keyring = MasterKeyring::load(&path).unwrap();
    assert_eq!(keyring.active_version(), 2);
    keyring.retire(1).unwrap();
    keyring.save(&path).unwrap();
    tokio::time::sleep(RELOAD_INTERVAL + Duration::from_millis(200)).await;
    read_back(&stack, &token, &before, "Aynur").await;
    read_back(&stack, &token, &after, "Leyla").await;
    let later = screen(&stack, &token, "Nərmin").await;
    read_back(&stack, &token, &later, "Nərmin").await;
    stack.stop().await;
}

haven_e2e::on_both_backends!(a_rotation_is_picked_up_by_running_services_without_a_restart);
