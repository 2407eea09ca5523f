//! Behaviour of directory storage, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use haven_config::Settings;
use haven_error::ErrorCode;
use haven_events::EventSignal;
use haven_referral::crypto::ReferralCrypto;
use haven_referral::domain::OrganizationType;
use haven_referral::store::{self, DirectoryStore, NewOrganization};

async fn setup(settings: &Settings) -> Arc<dyn DirectoryStore> {
    store::open(
        haven_referral::connect(settings).await.unwrap(),
        EventSignal::default(),
        ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap(),
    )
}

fn organization(name: &str) -> NewOrganization {
    NewOrganization {
        id: None,
        name: name.into(),
        organization_type: OrganizationType::Ngo,
        settlement: "Baku".into(),
        created_by: "admin-1".into(),
    }
}

async fn organizations_are_listed_in_order_and_names_are_unique(store: Arc<dyn DirectoryStore>) {
    let shelter = store
        .create_organization(organization("Clean World shelter"), None)
        .await
        .map(|created| created.record)
        .unwrap();
    let centre = store
        .create_organization(organization("Ganja reintegration centre"), None)
        .await
        .map(|created| created.record)
        .unwrap();
    let duplicate = store
        .create_organization(organization("Clean World shelter"), None)
        .await
        .map(|created| created.record)
        .unwrap_err();
    assert_eq!(duplicate.code(), ErrorCode::AlreadyExists);
    let first_page = store.list_organizations(None, 1).await.unwrap();
    assert_eq!(first_page[0].id, shelter.id);
    let second_page = store
        .list_organizations(Some(first_page[0].position), 10)
        .await
        .unwrap();
    assert_eq!(
        second_page.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![centre.id]
    );
    assert_eq!(
        store.get_organization(centre.id).await.unwrap(),
        Some(centre)
    );
}

haven_storage::backend_suite! {
    setup = setup;
    organizations_are_listed_in_order_and_names_are_unique,
}
