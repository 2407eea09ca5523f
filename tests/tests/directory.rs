//! The directory across organisations: an organisation's admin or coordinator keeps
//! its own entries only; registering another organisation's id, and adding or
//! changing another organisation's facilities, is the directory admin's
//! (`directory_admin`), and a refusal writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use uuid::Uuid;

use haven_e2e::{TestStack, on_both_backends};

const PROBLEM_JSON: &str = "application/problem+json";

fn facility(name: &str, organization: Option<Uuid>) -> Value {
    let mut body = json!({"name": name, "settlement": "Baku", "service_types": ["shelter"],
        "capacity_total": 10, "languages": ["az"]});
    if let Some(organization) = organization {
        body["organization_id"] = json!(organization);
    }
    body
}

/// Asserts a refusal with `status` as problem+json.
async fn refused(response: reqwest::Response, status: u16, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(response.headers()["content-type"], PROBLEM_JSON, "{what}");
}

/// Names of the facilities of `organization`, as anyone may read them.
async fn facilities_of(stack: &TestStack, token: &str, organization: Uuid) -> Vec<String> {
    let response = stack
        .get(
            token,
            &format!("/v1/facilities?organization_id={organization}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|facility| facility["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn patch(
    stack: &TestStack,
    token: &str,
    id: &str,
    etag: &str,
    body: &Value,
) -> reqwest::Response {
    stack
        .http
        .patch(stack.url(&format!("/v1/facilities/{id}")))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn only_the_directory_admin_keeps_other_organisations_entries(stack: TestStack) {
    let ngo = Uuid::new_v4();
    let shelter = Uuid::new_v4();
    let ministry = Uuid::new_v4();
    let ngo_admin = stack.token_as("ngo-admin", &["admin"], ngo);
    let ngo_coordinator = stack.token_as("ngo-coordinator", &["referral_coordinator"], ngo);
    let shelter_coordinator = stack.token_as("farida", &["referral_coordinator"], shelter);
    let keeper = stack.token_as("directory-keeper", &["directory_admin"], ministry);

    // An admin registers its own organisation, but not another one's id.
    let own = json!({"id": ngo, "name": "NGO", "organization_type": "ngo"});
    assert_eq!(
        stack
            .post(&ngo_admin, "/v1/organizations", own)
            .await
            .status(),
        201
    );
    let squatted = json!({"id": shelter, "name": "Not the shelter", "organization_type": "ngo"});
    refused(
        stack.post(&ngo_admin, "/v1/organizations", squatted).await,
        403,
        "an admin registering another organisation's id",
    )
    .await;
    let lookup = stack
        .get(&ngo_admin, &format!("/v1/organizations/{shelter}"))
        .await;
    assert_eq!(
        lookup.status(),
        404,
        "the refused registration wrote nothing"
    );
    let registered = json!({"id": shelter, "name": "Shelter", "organization_type": "ngo"});
    assert_eq!(
        stack
            .post(&keeper, "/v1/organizations", registered)
            .await
            .status(),
        201,
        "the directory admin registers it"
    );

    // Neither the NGO's admin nor its coordinator adds a facility to the shelter.
    for (token, who) in [(&ngo_admin, "admin"), (&ngo_coordinator, "coordinator")] {
        refused(
            stack
                .post(
                    token,
                    "/v1/facilities",
                    facility(&format!("Fake of {who}"), Some(shelter)),
                )
                .await,
            403,
            &format!("the NGO's {who} adding a facility of the shelter"),
        )
        .await;
    }
    assert!(facilities_of(&stack, &keeper, shelter).await.is_empty());

    // The directory admin does; the shelter's own coordinator and the directory
    // admin may change it, another organisation's admin cannot even see it to change.
    let created = stack
        .post(
            &keeper,
            "/v1/facilities",
            facility("Shelter Baku", Some(shelter)),
        )
        .await;
    assert_eq!(created.status(), 201);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["organization_id"], json!(shelter.to_string()));
    let id = created["id"].as_str().unwrap().to_owned();

    let renamed = facility("Renamed by the NGO", None);
    refused(
        patch(&stack, &ngo_admin, &id, &etag, &renamed).await,
        404,
        "the NGO's admin changing the shelter's facility",
    )
    .await;
    let changed = patch(
        &stack,
        &shelter_coordinator,
        &id,
        &etag,
        &facility("Shelter Baku (24/7)", None),
    )
    .await;
    assert_eq!(
        changed.status(),
        200,
        "the shelter changes its own facility"
    );
    let etag = changed.headers()["etag"].to_str().unwrap().to_owned();
    let changed = patch(
        &stack,
        &keeper,
        &id,
        &etag,
        &facility("Shelter Baku, Nizami", None),
    )
    .await;
    assert_eq!(changed.status(), 200, "the directory admin changes it too");
    assert_eq!(
        facilities_of(&stack, &ngo_admin, shelter).await,
        vec!["Shelter Baku, Nizami".to_owned()]
    );

    // Directory admins see no cases or personal data.
    refused(
        stack.get(&keeper, "/v1/screenings").await,
        403,
        "directory admin reading screenings",
    )
    .await;
    stack.stop().await;
}

on_both_backends!(only_the_directory_admin_keeps_other_organisations_entries);
