//! Behaviour of screening storage, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_auth::Scope;
use haven_config::Settings;
use haven_events::EventSignal;
use haven_intake::domain::{
    ConsentMethod, ConsentPurpose, DecidingOrganizationType, IdentificationStage, ReferralSource,
};
use haven_intake::store::{self, NewConsent, NewDecision, NewScreening, ScreeningStore};
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn ScreeningStore>,
    database: Database,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_intake::connect(settings).await.unwrap();
    Fixture {
        store: store::open(database.clone(), EventSignal::default()),
        database,
    }
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
    }
}

fn consent(purpose: ConsentPurpose, given: bool) -> NewConsent {
    NewConsent {
        purpose,
        given,
        method: ConsentMethod::Written,
        recorded_by: "officer-1".into(),
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
        .create_screening(screening(mine))
        .await
        .unwrap();
    assert_eq!(created.stage, IdentificationStage::Screened);
    assert_eq!(created.version, 1);
    let found = fixture
        .store
        .get_screening(Scope::Organization(mine), created.id)
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&created));
    let other = Scope::Organization(Uuid::new_v4());
    assert!(
        fixture
            .store
            .get_screening(other, created.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fixture
            .store
            .list_screenings(other, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let withheld = fixture
        .store
        .record_consent(other, created.id, consent(ConsentPurpose::Assistance, true))
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
    let scope = Scope::Organization(organization);
    let created = fixture
        .store
        .create_screening(screening(organization))
        .await
        .unwrap();
    fixture
        .store
        .record_consent(scope, created.id, consent(ConsentPurpose::Assistance, true))
        .await
        .unwrap();
    let withdrawn = fixture
        .store
        .record_consent(
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
    let scope = Scope::Organization(organization);
    let created = fixture
        .store
        .create_screening(screening(organization))
        .await
        .unwrap();
    let identified = fixture
        .store
        .record_decision(scope, created.id, decision(IdentificationStage::Identified))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identified.stage, IdentificationStage::Identified);
    assert!(!identified.needs_case(), "no consent yet");
    assert!(fixture.store.awaiting_case(50).await.unwrap().is_empty());

    let consenting = fixture
        .store
        .record_consent(scope, created.id, consent(ConsentPurpose::Assistance, true))
        .await
        .unwrap()
        .unwrap();
    assert!(consenting.needs_case());
    let waiting = fixture.store.awaiting_case(50).await.unwrap();
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
    assert!(fixture.store.awaiting_case(50).await.unwrap().is_empty());
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
    let scope = Scope::Organization(organization);
    let created = fixture
        .store
        .create_screening(screening(organization))
        .await
        .unwrap();
    fixture
        .store
        .record_consent(scope, created.id, consent(ConsentPurpose::Assistance, true))
        .await
        .unwrap();
    fixture
        .store
        .record_consent(
            scope,
            created.id,
            consent(ConsentPurpose::Assistance, false),
        )
        .await
        .unwrap();
    fixture
        .store
        .record_decision(scope, created.id, decision(IdentificationStage::Identified))
        .await
        .unwrap();
    assert!(fixture.store.awaiting_case(50).await.unwrap().is_empty());
}

async fn decisions_are_history_and_set_the_stage(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Scope::Organization(organization);
    let created = fixture
        .store
        .create_screening(screening(organization))
        .await
        .unwrap();
    for stage in [
        IdentificationStage::PresumedVictim,
        IdentificationStage::ReasonableGroundsPositive,
        IdentificationStage::Identified,
    ] {
        fixture
            .store
            .record_decision(scope, created.id, decision(stage))
            .await
            .unwrap();
    }
    let current = fixture
        .store
        .get_screening(scope, created.id)
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

haven_storage::backend_suite! {
    setup = setup;
    a_screening_is_only_visible_to_its_organization,
    consent_history_keeps_withdrawals,
    an_identified_consenting_person_awaits_a_case_until_linked,
    a_withdrawn_consent_stops_case_opening,
    decisions_are_history_and_set_the_stage,
}
