//! Behaviour of reporting projections, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use uuid::Uuid;

use haven_config::Settings;
use haven_proto::common::v1::Event;
use haven_reporting::projections::{self, Projections};

async fn setup(settings: &Settings) -> Arc<dyn Projections> {
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    projections::open(haven_reporting::connect(settings).await.unwrap(), keys)
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

/// After an erasure the person's past events come back redacted (sequence kept,
/// payload gone): a rebuild applies them without failing, counts none of them, and a
/// replay counts nothing twice.
async fn redacted_events_count_nothing_and_stop_nothing(projections: Arc<dyn Projections>) {
    let organization = Uuid::new_v4();
    let events: Vec<Event> = path(organization)
        .into_iter()
        .map(|event| match event.event_type.as_str() {
            "organization.created" => event,
            _ => Event {
                payload_json: haven_events::REDACTED_PAYLOAD.to_owned(),
                ..event
            },
        })
        .collect();
    // A catch-up (one batch per feed), then the same events one by one.
    for source in ["intake", "case", "referral"] {
        let feed: Vec<Event> = events
            .iter()
            .filter(|event| event.source == source)
            .cloned()
            .collect();
        projections.apply_batch(&feed).await.unwrap();
    }
    for event in &events {
        projections.apply(event).await.unwrap();
    }
    let summary = projections.summary(None).await.unwrap();
    assert_eq!(summary.screenings_total, 0);
    assert_eq!(summary.identified_total, 0);
    assert_eq!(summary.cases_total, 0);
    assert_eq!(summary.re_trafficked_total, 0);
    assert_eq!(summary.organizations_total, 1);
    assert_eq!(projections.checkpoint("intake").await.unwrap(), 4);
    assert_eq!(projections.checkpoint("case").await.unwrap(), 1);
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

/// A batch (a catch-up) with an event that cannot be applied: the events before it
/// are applied and the checkpoint stops just before it; nothing after it counts.
async fn a_batch_stops_just_before_an_event_it_cannot_apply(projections: Arc<dyn Projections>) {
    let organization = Uuid::new_v4();
    let screening = |sequence: u64| {
        event(
            "intake",
            sequence,
            "screening.created",
            Uuid::new_v4(),
            organization,
            serde_json::json!({"referral_source": "police"}),
        )
    };
    let bad = event(
        "intake",
        3,
        "screening.created",
        Uuid::new_v4(),
        organization,
        serde_json::json!({"unexpected": 1}),
    );
    let batch = [screening(1), screening(2), bad, screening(4)];
    assert!(projections.apply_batch(&batch).await.is_err());
    assert_eq!(projections.checkpoint("intake").await.unwrap(), 2);
    let facts = projections
        .facts(&haven_reporting::projections::ReportScope::default())
        .await
        .unwrap();
    let sources = facts
        .tables
        .iter()
        .find(|table| table.name == "screenings_by_source")
        .unwrap();
    assert_eq!(sources.total.n, 2, "the two before it, counted once");
    // A whole batch that can be applied is, at once, and a replay of it changes nothing.
    let good = [screening(3), screening(4), screening(5)];
    projections.apply_batch(&good).await.unwrap();
    projections.apply_batch(&good).await.unwrap();
    assert_eq!(projections.checkpoint("intake").await.unwrap(), 5);
    assert_eq!(projections.summary(None).await.unwrap().screenings_total, 5);
}

/// A generated history: per person, screening, consents, a decision, a case with
/// services, payments and assessments, and a referral; the three feeds interleaved
/// as a follower would see them.
fn history(people: usize) -> Vec<Event> {
    let organization = Uuid::new_v4();
    let provider = Uuid::new_v4();
    let mut feeds: [Vec<(String, Uuid, serde_json::Value)>; 3] = Default::default();
    for person in 0..people {
        let screening = Uuid::new_v4();
        let case = Uuid::new_v4();
        let gender = ["female", "male"][person % 2];
        feeds[0].push(("screening.created".into(), screening, serde_json::json!({
            "referral_source": (["police", "hotline", "ngo_outreach"][person % 3]), "is_minor": person % 7 == 0,
            "screened_at": 1_767_225_600 + person as i64 * 3_600, "gender": gender, "birth_year": 1980 + (person % 30) as i64,
            "citizenships": [(["az", "uz"][person % 2])], "exploitation_types": [(["forced_labour", "sexual_exploitation"][person % 2])],
            "means_of_control": ["threats"], "settlement": (["Bakı", "Gəncə"][person % 2])})));
        feeds[0].push((
            "screening.consent_recorded".into(),
            screening,
            serde_json::json!({"purpose": "reporting", "given": person % 5 != 0}),
        ));
        feeds[0].push(("screening.decision_recorded".into(), screening, serde_json::json!({
            "stage": if person % 4 == 0 { "presumed_victim" } else { "identified" }, "decided_at": 1_767_225_600 + person as i64 * 3_600 + 86_400})));
        feeds[0].push((
            "screening.case_opened".into(),
            screening,
            serde_json::json!({"case_id": case}),
        ));
        feeds[1].push(("case.opened".into(), case, serde_json::json!({"case_id": case, "screening_id": screening, "status": "active", "stage": "new"})));
        feeds[1].push(("case.service_added".into(), case, serde_json::json!({
            "service_id": Uuid::new_v4(), "type": (["shelter", "medical", "legal_aid"][person % 3]), "provider_organization_id": provider, "status": "delivered"})));
        feeds[1].push((
            "case.payment_recorded".into(),
            case,
            serde_json::json!({"payment_id": Uuid::new_v4(), "amount": "50.25", "currency": "AZN"}),
        ));
        feeds[1].push((
            "case.assessed".into(),
            case,
            serde_json::json!({"scores": {"safety": 2, "housing": 1}}),
        ));
        feeds[1].push((
            "case.assessed".into(),
            case,
            serde_json::json!({"scores": {"safety": 4, "housing": 3}}),
        ));
        if person % 3 == 0 {
            feeds[1].push((
                "case.closed".into(),
                case,
                serde_json::json!({"reason": "goals_achieved", "status": "closed"}),
            ));
        }
        let referral = Uuid::new_v4();
        feeds[2].push(("referral.requested".into(), referral, serde_json::json!({
            "referral_id": referral, "case_id": case, "from_organization_id": organization, "to_organization_id": provider,
            "service_type": "shelter", "status": "requested"})));
        feeds[2].push((
            "referral.accepted".into(),
            referral,
            serde_json::json!({"status": if person % 6 == 0 { "declined" } else { "accepted" }}),
        ));
    }
    // Interleave the feeds; each keeps its own sequence.
    let mut events = Vec::new();
    let sources = ["intake", "case", "referral"];
    let longest = feeds.iter().map(Vec::len).max().unwrap_or(0);
    for index in 0..longest {
        for (feed, source) in feeds.iter().zip(sources) {
            if let Some((kind, aggregate, payload)) = feed.get(index) {
                events.push(event(
                    source,
                    index as u64 + 1,
                    kind,
                    *aggregate,
                    organization,
                    payload.clone(),
                ));
            }
        }
    }
    events
}

async fn a_crash_mid_catch_up_and_a_rebuild_give_the_same_figures(
    projections: Arc<dyn Projections>,
) {
    use haven_reporting::projections::ReportScope;
    let events = history(120);
    for event in &events {
        projections.apply(event).await.unwrap();
    }
    let scope = ReportScope::default();
    let clean = projections.facts(&scope).await.unwrap();
    let sources = clean
        .tables
        .iter()
        .find(|table| table.name == "screenings_by_source")
        .unwrap();
    assert_eq!(sources.total.n, 120);
    assert_eq!(cash_of(&clean), [("AZN".to_owned(), 120 * 5_025, 120)]);
    assert_eq!(clean.referrals_answered.n, 120);
    assert_eq!(clean.referrals_accepted, 100);

    // Rebuild, then a catch-up that dies half way and restarts from an older position
    // (as a follower that lost its place would): every event counts once.
    projections.rebuild().await.unwrap();
    assert!(projections.checkpoints().await.unwrap().is_empty());
    let emptied = projections.facts(&scope).await.unwrap();
    assert_eq!(
        emptied
            .tables
            .iter()
            .find(|table| table.name == "screenings_by_source")
            .unwrap()
            .total
            .n,
        0
    );
    let half = events.len() / 2;
    for event in &events[..half] {
        projections.apply(event).await.unwrap();
    }
    // The restart catches up in batches, as a follower does.
    for source in ["intake", "case", "referral"] {
        let feed: Vec<Event> = events[half / 3..]
            .iter()
            .filter(|event| event.source == source)
            .cloned()
            .collect();
        for batch in feed.chunks(7) {
            projections.apply_batch(batch).await.unwrap();
        }
    }
    assert_eq!(projections.facts(&scope).await.unwrap(), clean);
}

async fn referrals_give_overdue_counts_and_places_held(projections: Arc<dyn Projections>) {
    use haven_reporting::projections::ReportScope;
    let sender = Uuid::new_v4();
    let receiver = Uuid::new_v4();
    let facility = Uuid::new_v4();
    let case = Uuid::new_v4();
    let mut sequence = 0;
    let mut case_sequence = 0;
    case_sequence += 1;
    projections
        .apply(&event(
            "case",
            case_sequence,
            "case.opened",
            case,
            sender,
            serde_json::json!({"case_id": case, "status": "active", "stage": "new"}),
        ))
        .await
        .unwrap();
    let mut refer = |accept_by: i64| {
        sequence += 1;
        let referral = Uuid::new_v4();
        (
            referral,
            event(
                "referral",
                sequence,
                "referral.requested",
                referral,
                sender,
                serde_json::json!({
            "referral_id": referral, "case_id": case, "from_organization_id": sender, "to_organization_id": receiver,
            "facility_id": facility, "service_type": "shelter", "status": "requested", "accept_by": accept_by,
            "outcome_due_on": "2020-01-01", "capacity_reserved": false}),
            ),
        )
    };
    let past = 1_600_000_000;
    let future = 4_000_000_000;
    let (late, late_event) = refer(past);
    let (held, held_event) = refer(future);
    let (released, released_event) = refer(future);
    for event in [late_event, held_event, released_event] {
        projections.apply(&event).await.unwrap();
    }
    let mut next = 3;
    let mut status = |referral: Uuid, status: &str, reserved: bool| {
        next += 1;
        event(
            "referral",
            next,
            &format!("referral.{status}"),
            referral,
            sender,
            serde_json::json!({"status": status, "capacity_reserved": reserved}),
        )
    };
    for event in [
        status(held, "accepted", true),
        status(released, "accepted", true),
        status(released, "completed", false),
    ] {
        projections.apply(&event).await.unwrap();
        // Applied again (a replay): changes nothing.
        projections.apply(&event).await.unwrap();
    }
    let facts = projections
        .facts(&ReportScope {
            organization_id: Some(receiver),
            ..ReportScope::default()
        })
        .await
        .unwrap();
    let places = facts
        .tables
        .iter()
        .find(|table| table.name == "places_held_by_month")
        .unwrap();
    assert_eq!(places.total.n, 1, "one place still held: {places:?}");
    let all = projections.facts(&ReportScope::default()).await.unwrap();
    let overdue = all
        .tables
        .iter()
        .find(|table| table.name == "referrals_overdue")
        .unwrap();
    let cells: Vec<(String, u64)> = overdue
        .cells
        .iter()
        .map(|(labels, count)| (labels[0].clone(), count.n))
        .collect();
    // The first waits past its answer date; the held one is past its outcome date.
    assert_eq!(
        cells,
        [("acceptance".to_owned(), 1), ("outcome".to_owned(), 1)]
    );
    let _ = late;
}

/// A history over fourteen months, two organisations and three regions, with
/// transfers, closures and reopenings, as three feeds: intake, case, referral.
struct Person {
    organization: Uuid,
    source: &'static str,
    region: &'static str,
    screened_at: time::OffsetDateTime,
    has_case: bool,
    transferred: bool,
    status: &'static str,
}

fn spread_history(people: usize) -> (Vec<Person>, [Vec<Event>; 3], [Uuid; 2]) {
    let organizations = [Uuid::new_v4(), Uuid::new_v4()];
    let provider = Uuid::new_v4();
    let start = time::macros::datetime!(2025-01-01 09:00 UTC);
    let mut feeds: [Vec<Event>; 3] = Default::default();
    let mut persons = Vec::new();
    let mut push = |feed: usize,
                    kind: &str,
                    aggregate: Uuid,
                    organization: Uuid,
                    at: time::OffsetDateTime,
                    payload: serde_json::Value| {
        let source = ["intake", "case", "referral"][feed];
        let sequence = feeds[feed].len() as u64 + 1;
        let mut event = event(source, sequence, kind, aggregate, organization, payload);
        event.occurred_at = Some(haven_proto::timestamp(at));
        feeds[feed].push(event);
    };
    for index in 0..people {
        let organization = organizations[index % 2];
        let screened_at = start
            + time::Duration::days(7 * index as i64)
            + time::Duration::hours(index as i64 % 10);
        let person = Person {
            organization,
            source: ["police", "hotline", "ngo_outreach", "labour_inspection"][index % 4],
            region: ["Bakı", "Gəncə", "Şəki"][index % 3],
            screened_at,
            has_case: index % 4 != 0,
            transferred: index % 5 == 0,
            status: if index % 3 == 0 && index % 9 != 0 {
                "closed"
            } else {
                "active"
            },
        };
        let screening = Uuid::new_v4();
        push(
            0,
            "screening.created",
            screening,
            organization,
            screened_at,
            serde_json::json!({
            "referral_source": person.source, "screened_at": screened_at.unix_timestamp(), "gender": (["female", "male"][index % 2]),
            "settlement": person.region, "exploitation_types": [(["forced_labour", "sexual_exploitation"][index % 2])]}),
        );
        if person.has_case {
            let decided_at = screened_at + time::Duration::days(index as i64 % 5);
            push(
                0,
                "screening.decision_recorded",
                screening,
                organization,
                decided_at,
                serde_json::json!({"stage": "identified", "decided_at": decided_at.unix_timestamp()}),
            );
            let case = Uuid::new_v4();
            let opened_at = screened_at + time::Duration::days(1);
            push(
                1,
                "case.opened",
                case,
                organization,
                opened_at,
                serde_json::json!({"case_id": case, "screening_id": screening, "status": "active", "stage": "new"}),
            );
            let service = Uuid::new_v4();
            push(
                1,
                "case.service_added",
                case,
                organization,
                opened_at,
                serde_json::json!({
                "service_id": service, "type": (["shelter", "medical"][index % 2]), "provider_organization_id": provider, "status": "planned"}),
            );
            if index % 2 == 0 {
                push(
                    1,
                    "case.service_updated",
                    case,
                    organization,
                    opened_at,
                    serde_json::json!({"service_id": service, "to": "delivered"}),
                );
            }
            push(
                1,
                "case.payment_recorded",
                case,
                organization,
                opened_at,
                serde_json::json!({"payment_id": Uuid::new_v4(), "amount": "10.00", "currency": "AZN"}),
            );
            let mut owner = organization;
            if person.transferred {
                owner = organizations[(index + 1) % 2];
                push(
                    1,
                    "case.transferred",
                    case,
                    organization,
                    opened_at,
                    serde_json::json!({"to": owner}),
                );
            }
            if index % 3 == 0 {
                push(
                    1,
                    "case.closed",
                    case,
                    owner,
                    opened_at,
                    serde_json::json!({"reason": "goals_achieved", "status": "closed"}),
                );
                if index % 9 == 0 {
                    push(
                        1,
                        "case.reopened",
                        case,
                        owner,
                        opened_at,
                        serde_json::json!({"stage": "assessment"}),
                    );
                }
            }
            let referral = Uuid::new_v4();
            push(
                2,
                "referral.requested",
                referral,
                owner,
                opened_at,
                serde_json::json!({
                "referral_id": referral, "case_id": case, "from_organization_id": owner, "to_organization_id": provider,
                "service_type": "shelter", "status": "requested"}),
            );
            push(
                2,
                "referral.accepted",
                referral,
                provider,
                opened_at + time::Duration::days(2),
                serde_json::json!({"status": if index % 6 == 1 { "declined" } else { "accepted" }}),
            );
        }
        persons.push(person);
    }
    (persons, feeds, organizations)
}

fn cells(facts: &haven_reporting::projections::Facts, name: &str) -> Vec<(Vec<String>, u64)> {
    facts
        .tables
        .iter()
        .find(|table| table.name == name)
        .unwrap()
        .cells
        .iter()
        .map(|(labels, count)| (labels.clone(), count.n))
        .collect()
}

/// Cash per currency: total and cases paid.
fn cash_of(facts: &haven_reporting::projections::Facts) -> Vec<(String, i64, u64)> {
    facts
        .cash
        .iter()
        .map(|(currency, total, cases)| (currency.clone(), *total, cases.n))
        .collect()
}

/// Feeds arrive in any interleaving (a case before its screening, a referral before
/// its case): the figures of every period, organisation and region are those
/// counted by hand from the history.
async fn feeds_in_any_order_give_the_hand_counted_figures_of_any_period(
    projections: Arc<dyn Projections>,
) {
    use haven_reporting::projections::ReportScope;
    use time::macros::datetime;
    let (persons, feeds, organizations) = spread_history(60);
    let scopes = [
        ReportScope::default(),
        ReportScope {
            organization_id: Some(organizations[0]),
            ..ReportScope::default()
        },
        ReportScope {
            region: Some("Gəncə".to_owned()),
            ..ReportScope::default()
        },
        // A 13-month project starting mid-month, for one organisation.
        ReportScope {
            from: Some(datetime!(2025-03-15 0:00 UTC)),
            until: Some(datetime!(2026-04-15 0:00 UTC)),
            organization_id: Some(organizations[1]),
            region: None,
        },
        // Days within one month.
        ReportScope {
            from: Some(datetime!(2025-06-03 0:00 UTC)),
            until: Some(datetime!(2025-06-20 0:00 UTC)),
            ..ReportScope::default()
        },
        // Open ends.
        ReportScope {
            until: Some(datetime!(2025-08-10 0:00 UTC)),
            ..ReportScope::default()
        },
        ReportScope {
            from: Some(datetime!(2025-08-10 0:00 UTC)),
            region: Some("Bakı".to_owned()),
            ..ReportScope::default()
        },
    ];
    let in_scope =
        |scope: &ReportScope, at: time::OffsetDateTime, organization: Uuid, region: &str| {
            scope.from.is_none_or(|from| at >= from)
                && scope.until.is_none_or(|until| at < until)
                && scope
                    .organization_id
                    .is_none_or(|wanted| wanted == organization)
                && scope
                    .region
                    .as_deref()
                    .is_none_or(|wanted| wanted == region)
        };
    // Feed by feed, round robin, as followers usually see them.
    let longest = feeds.iter().map(Vec::len).max().unwrap();
    for index in 0..longest {
        for feed in &feeds {
            if let Some(event) = feed.get(index) {
                projections.apply(event).await.unwrap();
            }
        }
    }
    let mut first = Vec::new();
    for scope in &scopes {
        let facts = projections.facts(scope).await.unwrap();
        // Screenings by source, counted by hand.
        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
        for person in persons.iter().filter(|person| {
            in_scope(
                scope,
                person.screened_at,
                person.organization,
                person.region,
            )
        }) {
            *expected.entry(person.source.to_owned()).or_default() += 1;
        }
        let expected: Vec<(Vec<String>, u64)> = expected
            .into_iter()
            .map(|(source, count)| (vec![source], count))
            .collect();
        assert_eq!(cells(&facts, "screenings_by_source"), expected, "{scope:?}");
        // Cases by status, with the owner after transfers and the opening day.
        let mut expected: std::collections::BTreeMap<String, u64> = Default::default();
        for person in persons.iter().filter(|person| person.has_case) {
            let owner = if person.transferred {
                organizations
                    .into_iter()
                    .find(|other| *other != person.organization)
                    .unwrap()
            } else {
                person.organization
            };
            if in_scope(
                scope,
                person.screened_at + time::Duration::days(1),
                owner,
                person.region,
            ) {
                *expected.entry(person.status.to_owned()).or_default() += 1;
            }
        }
        let cases: u64 = expected.values().sum();
        let expected: Vec<(Vec<String>, u64)> = expected
            .into_iter()
            .map(|(status, count)| (vec![status], count))
            .collect();
        assert_eq!(cells(&facts, "cases_by_status"), expected, "{scope:?}");
        // Every case was paid 10.00 once.
        let cash: Vec<(String, i64, u64)> = if cases == 0 {
            Vec::new()
        } else {
            vec![("AZN".to_owned(), 1_000 * cases as i64, cases)]
        };
        assert_eq!(cash_of(&facts), cash, "{scope:?}");
        first.push(facts);
    }
    // Again with the feeds in the worst order: referrals, then cases, then screenings.
    projections.rebuild().await.unwrap();
    for feed in feeds.iter().rev() {
        for event in feed {
            projections.apply(event).await.unwrap();
        }
    }
    let without_places = |mut facts: haven_reporting::projections::Facts| {
        // Places held depend on the moment of reading only.
        facts
            .tables
            .retain(|table| table.name != "places_held_by_month");
        facts
    };
    let first: Vec<_> = first.into_iter().map(without_places).collect();
    for (scope, first) in scopes.iter().zip(&first) {
        let again = without_places(projections.facts(scope).await.unwrap());
        assert_eq!(&again, first, "{scope:?}");
    }
    // And with the three feeds applied at the same time, as the followers do.
    projections.rebuild().await.unwrap();
    let mut followers = Vec::new();
    for feed in feeds {
        let projections = projections.clone();
        followers.push(tokio::spawn(async move {
            for event in &feed {
                projections.apply(event).await.unwrap();
            }
        }));
    }
    for follower in followers {
        follower.await.unwrap();
    }
    for (scope, first) in scopes.iter().zip(&first) {
        let again = without_places(projections.facts(scope).await.unwrap());
        assert_eq!(&again, first, "concurrent feeds, {scope:?}");
    }
}

haven_storage::backend_suite! {
    setup = setup;
    events_count_once_even_when_replayed,
    redacted_events_count_nothing_and_stop_nothing,
    a_crash_mid_catch_up_and_a_rebuild_give_the_same_figures,
    referrals_give_overdue_counts_and_places_held,
    summaries_filter_by_organization,
    a_malformed_event_changes_nothing,
    a_batch_stops_just_before_an_event_it_cannot_apply,
    feeds_in_any_order_give_the_hand_counted_figures_of_any_period,
}
