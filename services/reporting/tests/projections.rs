//! Behaviour of reporting projections, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use uuid::Uuid;

use haven_config::Settings;
use haven_proto::common::v1::Event;
use haven_reporting::projections::{self, Projections};

async fn setup(settings: &Settings) -> Arc<dyn Projections> {
    projections::open(haven_reporting::connect(settings).await.unwrap())
}

fn event(
    source: &str,
    sequence: u64,
    event_type: &str,
    aggregate: Uuid,
    organization: Uuid,
    payload: serde_json::Value,
) -> Event {
    Event {
        sequence,
        event_id: Uuid::new_v4().to_string(),
        source: source.into(),
        event_type: event_type.into(),
        aggregate_id: aggregate.to_string(),
        organization_id: organization.to_string(),
        payload_json: payload.to_string(),
        occurred_at: Some(haven_proto::timestamp(time::OffsetDateTime::now_utc())),
        traceparent: String::new(),
    }
}

fn path(organization: Uuid) -> Vec<Event> {
    let screening = Uuid::new_v4();
    let case = Uuid::new_v4();
    vec![
        event(
            "intake",
            1,
            "screening.created",
            screening,
            organization,
            serde_json::json!({"referral_source": "hotline", "is_minor": false}),
        ),
        event(
            "intake",
            2,
            "screening.consent_recorded",
            screening,
            organization,
            serde_json::json!({"purpose": "assistance", "given": true}),
        ),
        event(
            "intake",
            3,
            "screening.decision_recorded",
            screening,
            organization,
            serde_json::json!({"stage": "identified"}),
        ),
        event(
            "intake",
            4,
            "screening.re_trafficking_confirmed",
            screening,
            organization,
            serde_json::json!({}),
        ),
        event(
            "case",
            1,
            "case.opened",
            case,
            organization,
            serde_json::json!({"status": "active", "stage": "new"}),
        ),
        event(
            "referral",
            1,
            "organization.created",
            organization,
            organization,
            serde_json::json!({"organization_type": "ngo"}),
        ),
    ]
}

async fn events_count_once_even_when_replayed(projections: Arc<dyn Projections>) {
    let organization = Uuid::new_v4();
    let events = path(organization);
    for event in &events {
        projections.apply(event).await.unwrap();
    }
    // A feed replayed from an older checkpoint (crash before the consumer saw the
    // acknowledgement) must not count anything twice.
    for event in &events {
        projections.apply(event).await.unwrap();
    }
    let summary = projections.summary(None).await.unwrap();
    assert_eq!(summary.screenings_total, 1);
    assert_eq!(summary.identified_total, 1);
    assert_eq!(summary.cases_total, 1);
    assert_eq!(summary.cases_open, 1);
    assert_eq!(summary.organizations_total, 1);
    assert_eq!(summary.re_trafficked_total, 1);
    let checkpoints = projections.checkpoints().await.unwrap();
    assert_eq!(checkpoints.get("intake"), Some(&4));
    assert_eq!(checkpoints.get("case"), Some(&1));
    assert_eq!(projections.checkpoint("intake").await.unwrap(), 4);
}

async fn summaries_filter_by_organization(projections: Arc<dyn Projections>) {
    let first = Uuid::new_v4();
    let second = Uuid::new_v4();
    let screening = |sequence, organization| {
        event(
            "intake",
            sequence,
            "screening.created",
            Uuid::new_v4(),
            organization,
            serde_json::json!({"referral_source": "police"}),
        )
    };
    for (sequence, organization) in [(1, first), (2, first), (3, second)] {
        projections
            .apply(&screening(sequence, organization))
            .await
            .unwrap();
    }
    assert_eq!(
        projections
            .summary(Some(first))
            .await
            .unwrap()
            .screenings_total,
        2
    );
    assert_eq!(
        projections
            .summary(Some(second))
            .await
            .unwrap()
            .screenings_total,
        1
    );
    assert_eq!(projections.summary(None).await.unwrap().screenings_total, 3);
}

async fn a_malformed_event_changes_nothing(projections: Arc<dyn Projections>) {
    let bad = event(
        "intake",
        1,
        "screening.created",
        Uuid::new_v4(),
        Uuid::new_v4(),
        serde_json::json!({"unexpected": 1}),
    );
    assert!(projections.apply(&bad).await.is_err());
    assert_eq!(
        projections.checkpoint("intake").await.unwrap(),
        0,
        "checkpoint not advanced"
    );
    assert_eq!(projections.summary(None).await.unwrap().screenings_total, 0);
}

haven_storage::backend_suite! {
    setup = setup;
    events_count_once_even_when_replayed,
    summaries_filter_by_organization,
    a_malformed_event_changes_nothing,
}
