//! Behaviour of case storage, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_case::crypto::CaseCrypto;
use haven_case::domain::CaseStatus;
use haven_case::store::{self, CaseFilter, CaseStore, NewCase, StoreOptions};
use haven_config::Settings;
use haven_crypto::MasterKeyring;
use haven_events::EventSignal;
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn CaseStore>,
    database: Database,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_case::connect(settings).await.unwrap();
    Fixture {
        store: store::open(
            database.clone(),
            EventSignal::default(),
            CaseCrypto::new(Arc::new(MasterKeyring::generate().unwrap())),
            StoreOptions {
                code_prefix: "AZ".into(),
                allow_self_approval: false,
            },
        ),
        database,
    }
}

fn caller() -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: "service:intake".into(),
            organization_id: Uuid::nil(),
            roles: vec![Role::Service],
            kind: PrincipalKind::Service,
        },
        purpose: "assistance".into(),
        request_id: "req-7".into(),
        on_behalf_of: None,
    }
}

fn new_case(organization_id: Uuid) -> NewCase {
    NewCase {
        screening_id: Uuid::new_v4(),
        organization_id,
        person_id: Some(Uuid::new_v4()),
    }
}

async fn opening_twice_returns_the_same_case(fixture: Fixture) {
    let new = new_case(Uuid::new_v4());
    let (first, created) = fixture
        .store
        .open_case(&caller(), new.clone())
        .await
        .unwrap();
    assert!(created);
    let (second, created_again) = fixture.store.open_case(&caller(), new).await.unwrap();
    assert!(!created_again);
    assert_eq!(first.id, second.id);
    assert_eq!(first.status, CaseStatus::Active);
    let year = time::OffsetDateTime::now_utc().year();
    assert_eq!(first.code, format!("AZ-{year}-000001"));
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one case.opened event, not two");
    assert_eq!(events[0].event_type, "case.opened");
    assert!(!events[0].payload_json.is_empty());
}

async fn concurrent_retries_open_exactly_one_case(fixture: Fixture) {
    let new = new_case(Uuid::new_v4());
    // Spawn all ten before awaiting any, so they really race.
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let store = fixture.store.clone();
            let new = new.clone();
            tokio::spawn(async move { store.open_case(&caller(), new).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for attempt in attempts {
        let (case, was_created) = attempt.await.unwrap().unwrap();
        ids.insert(case.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

/// A retry that loses the race to open the case receives the winner's case, so it
/// reads it: like every opening, it leaves a `case.open` entry about that case.
async fn every_opening_is_audited_even_one_that_lost_the_race(fixture: Fixture) {
    let new = new_case(Uuid::new_v4());
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let store = fixture.store.clone();
            let new = new.clone();
            tokio::spawn(async move { store.open_case(&caller(), new).await })
        })
        .collect();
    let mut case_id = None;
    for attempt in attempts {
        let (case, _) = attempt.await.unwrap().unwrap();
        case_id = Some(case.id);
    }
    let trail =
        haven_audit::entries_for_record(&fixture.database, "case", case_id.unwrap(), 0, 100)
            .await
            .unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|entry| entry.action == "case.open")
            .count(),
        10,
        "each of the ten openings is audited"
    );
}

async fn other_organizations_cases_are_invisible(fixture: Fixture) {
    let mine = Uuid::new_v4();
    let theirs = Uuid::new_v4();
    let (my_case, _) = fixture
        .store
        .open_case(&caller(), new_case(mine))
        .await
        .unwrap();
    let (their_case, _) = fixture
        .store
        .open_case(&caller(), new_case(theirs))
        .await
        .unwrap();
    let scope = Scope::Organization(mine);
    assert!(
        fixture
            .store
            .get_case(&caller(), scope, my_case.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        fixture
            .store
            .get_case(&caller(), scope, their_case.id)
            .await
            .unwrap()
            .is_none()
    );
    let listed = fixture
        .store
        .list_cases(&caller(), scope, &CaseFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|case| case.id).collect::<Vec<_>>(),
        vec![my_case.id]
    );
    let all = fixture
        .store
        .list_cases(&caller(), Scope::All, &CaseFilter::default(), None, 50)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}

async fn listing_pages_through_every_case_once(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let mut opened = Vec::new();
    for _ in 0..7 {
        opened.push(
            fixture
                .store
                .open_case(&caller(), new_case(organization))
                .await
                .unwrap()
                .0
                .id,
        );
    }
    let scope = Scope::Organization(organization);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = fixture
            .store
            .list_cases(&caller(), scope, &CaseFilter::default(), after, 3)
            .await
            .unwrap();
        seen.extend(page.iter().map(|case| case.id));
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|case| case.position);
    }
    assert_eq!(seen, opened);
    let closed = CaseFilter {
        status: Some(CaseStatus::Closed),
        include_sealed: true,
        ..CaseFilter::default()
    };
    assert!(
        fixture
            .store
            .list_cases(&caller(), scope, &closed, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_sealed_case_leaves_lists_unless_asked_for(fixture: Fixture) {
    let organization = Uuid::new_v4();
    let scope = Scope::Organization(organization);
    let (case, _) = fixture
        .store
        .open_case(&caller(), new_case(organization))
        .await
        .unwrap();
    let foreign = fixture
        .store
        .seal_case(
            &caller(),
            Scope::Organization(Uuid::new_v4()),
            case.id,
            "court order 12/2026",
        )
        .await
        .unwrap();
    assert!(foreign.is_none(), "another organisation cannot seal it");
    let sealed = fixture
        .store
        .seal_case(&caller(), scope, case.id, "court order 12/2026")
        .await
        .unwrap()
        .unwrap();
    assert!(sealed.sealed);
    assert_eq!(sealed.version, 2);
    let again = fixture
        .store
        .seal_case(&caller(), scope, case.id, "court order 12/2026")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.version, 2, "sealing twice changes nothing");
    let hidden = CaseFilter::default();
    assert!(
        fixture
            .store
            .list_cases(&caller(), scope, &hidden, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let shown = CaseFilter {
        include_sealed: true,
        ..CaseFilter::default()
    };
    assert_eq!(
        fixture
            .store
            .list_cases(&caller(), scope, &shown, None, 50)
            .await
            .unwrap()
            .len(),
        1
    );
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == "case.sealed")
            .count(),
        1
    );
}

async fn the_workflow_moves_step_by_step_and_one_of_two_editors_wins(fixture: Fixture) {
    use haven_case::domain::CaseStage;
    let organization = Uuid::new_v4();
    let scope = Scope::Organization(organization);
    let (case, _) = fixture
        .store
        .open_case(&caller(), new_case(organization))
        .await
        .unwrap();
    let skipping = fixture
        .store
        .change_stage(&caller(), scope, case.id, case.version, CaseStage::Services)
        .await
        .unwrap_err();
    assert_eq!(skipping.code(), haven_error::ErrorCode::Conflict);
    assert!(
        skipping.message().contains("`new`"),
        "{}",
        skipping.message()
    );
    let assessed = fixture
        .store
        .change_stage(
            &caller(),
            scope,
            case.id,
            case.version,
            CaseStage::Assessment,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (assessed.stage, assessed.version),
        (CaseStage::Assessment, case.version + 1)
    );
    // A second editor who read the old version loses; nothing of theirs is written.
    let stale = fixture
        .store
        .change_stage(
            &caller(),
            scope,
            case.id,
            case.version,
            CaseStage::Assessment,
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), haven_error::ErrorCode::PreconditionFailed);
    let closing = fixture
        .store
        .change_stage(
            &caller(),
            scope,
            case.id,
            assessed.version,
            CaseStage::Closed,
        )
        .await
        .unwrap_err();
    assert_eq!(
        closing.code(),
        haven_error::ErrorCode::Conflict,
        "closing is its own workflow"
    );
    let foreign = Scope::Organization(Uuid::new_v4());
    assert!(
        fixture
            .store
            .change_stage(
                &caller(),
                foreign,
                case.id,
                assessed.version,
                CaseStage::Plan
            )
            .await
            .unwrap()
            .is_none()
    );
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == "case.stage_changed")
            .count(),
        1
    );
    let trail = haven_audit::entries_for_record(&fixture.database, "case", case.id, 0, 10)
        .await
        .unwrap();
    assert!(trail.iter().any(|entry| entry.action == "case.update"));
}

async fn assessments_repeat_over_time_and_stay_in_scope(fixture: Fixture) {
    use haven_case::domain::{AssessmentKind, NeedDomain};
    let organization = Uuid::new_v4();
    let scope = Scope::Organization(organization);
    let (case, _) = fixture
        .store
        .open_case(&caller(), new_case(organization))
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let first = vec![(NeedDomain::Safety, 1), (NeedDomain::Housing, 2)];
    let later = vec![(NeedDomain::Safety, 4), (NeedDomain::Housing, 3)];
    fixture
        .store
        .add_assessment(
            &caller(),
            scope,
            case.id,
            AssessmentKind::Individual,
            first.clone(),
            now - time::Duration::days(60),
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    fixture
        .store
        .add_assessment(
            &caller(),
            scope,
            case.id,
            AssessmentKind::Individual,
            later.clone(),
            now,
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    let listed = fixture
        .store
        .list_assessments(&caller(), scope, case.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        listed.iter().map(|a| a.scores.clone()).collect::<Vec<_>>(),
        vec![first, later]
    );
    let foreign = Scope::Organization(Uuid::new_v4());
    assert!(
        fixture
            .store
            .list_assessments(&caller(), foreign, case.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fixture
            .store
            .add_assessment(
                &caller(),
                foreign,
                case.id,
                AssessmentKind::Household,
                vec![(NeedDomain::Legal, 3)],
                now,
                None
            )
            .await
            .map(|created| created.map(|created| created.record))
            .unwrap()
            .is_none()
    );
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|event| event.event_type == "case.assessed")
            .count(),
        2
    );
}

haven_storage::backend_suite! {
    setup = setup;
    opening_twice_returns_the_same_case,
    concurrent_retries_open_exactly_one_case,
    every_opening_is_audited_even_one_that_lost_the_race,
    other_organizations_cases_are_invisible,
    listing_pages_through_every_case_once,
    a_sealed_case_leaves_lists_unless_asked_for,
    the_workflow_moves_step_by_step_and_one_of_two_editors_wins,
    assessments_repeat_over_time_and_stay_in_scope,
}
