//! Facilities, catchment search and referrals on SQLite and on Postgres: places held
//! on acceptance never overbook, the lifecycle refuses illegal moves, and a withdrawn
//! consent revokes open referrals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_config::Settings;
use haven_error::ErrorCode;
use haven_events::EventSignal;
use haven_proto::common::v1::Event;
use haven_referral::crypto::ReferralCrypto;
use haven_referral::domain::{
    Acceptance, Facility, FacilityDetails, OrganizationType, Profile, ReferralStatus, Side, Urgency,
};
use haven_referral::geo::Gazetteer;
use haven_referral::store::{
    self, DirectoryStore, NewOrganization, NewReferral, ReferralFilter, StatusChange,
};

struct Fixture {
    store: Arc<dyn DirectoryStore>,
    sender: Uuid,
    receiver: Uuid,
}

async fn setup(settings: &Settings) -> Fixture {
    let store = store::open(
        haven_referral::connect(settings).await.unwrap(),
        EventSignal::default(),
        ReferralCrypto::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap(),
    );
    let mut ids = Vec::new();
    for name in ["Sending centre", "Receiving shelter"] {
        let organization = store
            .create_organization(
                NewOrganization {
                    id: Some(Uuid::new_v4()),
                    name: name.into(),
                    organization_type: OrganizationType::Ngo,
                    settlement: "Bakı".into(),
                    created_by: "admin".into(),
                },
                None,
            )
            .await
            .map(|created| created.record)
            .unwrap();
        ids.push(organization.id);
    }
    Fixture {
        store,
        sender: ids[0],
        receiver: ids[1],
    }
}

fn staff(organization: Uuid, roles: &[Role]) -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: format!("staff-{organization}"),
            organization_id: organization,
            roles: roles.to_vec(),
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "req".into(),
        on_behalf_of: None,
    }
}

fn shelter(settlement: &str, beds: u32) -> FacilityDetails {
    let gazetteer = Gazetteer::default_settlements();
    FacilityDetails {
        name: format!("Shelter in {settlement}"),
        address: "1 Main street".into(),
        settlement: settlement.into(),
        point: gazetteer.find(settlement).unwrap().point,
        service_types: vec!["shelter".into()],
        capacity_total: beds,
        accepts: Acceptance {
            genders: vec!["female".into()],
            age_groups: vec![],
            minors: false,
            families: true,
        },
        languages: vec!["az".into(), "ru".into()],
        opening_hours: "24/7".into(),
        contact_phone: "+994 12 000 00 00".into(),
        contact_email: String::new(),
        active: true,
    }
}

impl Fixture {
    async fn facility(&self, settlement: &str, beds: u32) -> Facility {
        self.store
            .create_facility(
                &staff(self.receiver, &[Role::ReferralCoordinator]),
                self.receiver,
                shelter(settlement, beds),
                None,
            )
            .await
            .map(|created| created.record)
            .unwrap()
    }

    async fn refer(
        &self,
        facility: &Facility,
        screening_id: Uuid,
    ) -> haven_referral::domain::Referral {
        let now = OffsetDateTime::now_utc();
        self.store
            .create_referral(
                &staff(self.sender, &[Role::CaseWorker]),
                NewReferral {
                    case_id: Uuid::new_v4(),
                    case_code: "HV-2026-000001".into(),
                    screening_id,
                    from_organization_id: self.sender,
                    facility: facility.clone(),
                    service_type: "shelter".into(),
                    purpose: "a safe bed tonight".into(),
                    urgency: Urgency::Emergency,
                    accept_by: now + Urgency::Emergency.answer_within(),
                    outcome_due_on: (now + Duration::days(30)).date(),
                },
                None,
            )
            .await
            .map(|created| created.record)
            .unwrap()
    }

    async fn move_to(
        &self,
        organization: Uuid,
        referral: &haven_referral::domain::Referral,
        to: ReferralStatus,
    ) -> haven_error::HavenResult<Option<haven_referral::domain::Referral>> {
        self.store
            .change_referral_status(
                &staff(organization, &[Role::Supervisor]),
                Scope::Organization(organization),
                referral.id,
                referral.version,
                StatusChange {
                    to,
                    reason: "because".into(),
                    outcome: "stayed two weeks".into(),
                },
            )
            .await
    }
}

async fn search_candidates_lie_in_the_box_and_only_active_facilities_with_room(fixture: Fixture) {
    let baku = fixture.facility("Bakı", 5).await;
    let ganja = fixture.facility("Gəncə", 5).await;
    let full = fixture.facility("Sumqayıt", 0).await;
    let center = Gazetteer::default_settlements()
        .find("Sumqayıt")
        .unwrap()
        .point;
    let ids: Vec<Uuid> = fixture
        .store
        .facilities_in("shelter", center.bounding_box(150.0), false)
        .await
        .unwrap()
        .into_iter()
        .map(|facility| facility.id)
        .collect();
    assert!(ids.contains(&baku.id), "Baku is ~30 km from Sumqayit");
    assert!(!ids.contains(&ganja.id), "Ganja is ~300 km away");
    assert!(
        ids.contains(&full.id),
        "capacity 0 means not counted, not full"
    );
    assert!(
        fixture
            .store
            .facilities_in("medical", center.bounding_box(150.0), false)
            .await
            .unwrap()
            .is_empty()
    );
    let profile = Profile {
        gender: Some("male".into()),
        ..Profile::default()
    };
    assert!(!baku.accepts(&profile), "a women's shelter");
    assert_eq!(baku.details.service_types, ["shelter"]);
}

async fn fifty_concurrent_acceptances_fill_ten_beds_exactly(fixture: Fixture) {
    let facility = fixture.facility("Bakı", 10).await;
    let mut referrals = Vec::new();
    for _ in 0..50 {
        referrals.push(fixture.refer(&facility, Uuid::new_v4()).await);
    }
    let attempts: Vec<_> = referrals
        .into_iter()
        .map(|referral| {
            let store = fixture.store.clone();
            let receiver = fixture.receiver;
            tokio::spawn(async move {
                store
                    .change_referral_status(
                        &staff(receiver, &[Role::Supervisor]),
                        Scope::Organization(receiver),
                        referral.id,
                        referral.version,
                        StatusChange {
                            to: ReferralStatus::Accepted,
                            reason: String::new(),
                            outcome: String::new(),
                        },
                    )
                    .await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut full = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(Some(referral)) => accepted.push(referral),
            Err(error) if error.code() == ErrorCode::Conflict => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((accepted.len(), full), (10, 40));
    assert!(accepted.iter().all(|referral| referral.capacity_reserved));
    assert_eq!(
        fixture
            .store
            .get_facility(facility.id)
            .await
            .unwrap()
            .unwrap()
            .capacity_free,
        0
    );

    // Ending a stay frees its bed; completing another frees one more.
    fixture
        .move_to(fixture.receiver, &accepted[0], ReferralStatus::Completed)
        .await
        .unwrap()
        .unwrap();
    let cancelled = fixture
        .move_to(fixture.sender, &accepted[1], ReferralStatus::Cancelled)
        .await
        .unwrap()
        .unwrap();
    assert!(!cancelled.capacity_reserved);
    assert_eq!(
        fixture
            .store
            .get_facility(facility.id)
            .await
            .unwrap()
            .unwrap()
            .capacity_free,
        2
    );
}

async fn the_lifecycle_refuses_illegal_moves_and_the_wrong_side(fixture: Fixture) {
    let facility = fixture.facility("Bakı", 3).await;
    let referral = fixture.refer(&facility, Uuid::new_v4()).await;
    let early = fixture
        .move_to(fixture.receiver, &referral, ReferralStatus::Completed)
        .await
        .unwrap_err();
    assert_eq!(early.code(), ErrorCode::Conflict);
    assert!(early.message().contains("requested"), "{}", early.message());
    let sender_accepts = fixture
        .move_to(fixture.sender, &referral, ReferralStatus::Accepted)
        .await
        .unwrap_err();
    assert_eq!(sender_accepts.code(), ErrorCode::PermissionDenied);
    let stranger = Uuid::new_v4();
    assert!(
        fixture
            .move_to(stranger, &referral, ReferralStatus::Accepted)
            .await
            .unwrap()
            .is_none()
    );
    let declined = fixture
        .move_to(fixture.receiver, &referral, ReferralStatus::Declined)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(declined.status_reason, "because");
    let stale = fixture
        .move_to(fixture.receiver, &referral, ReferralStatus::Accepted)
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::PreconditionFailed);
    let after = fixture
        .move_to(fixture.receiver, &declined, ReferralStatus::Accepted)
        .await
        .unwrap_err();
    assert_eq!(after.code(), ErrorCode::Conflict, "a decline is final");
    assert_eq!(
        fixture
            .store
            .get_facility(facility.id)
            .await
            .unwrap()
            .unwrap()
            .capacity_free,
        3
    );

    // Each side lists what it sent or received; nobody else sees it.
    let incoming = ReferralFilter {
        side: Some(Side::Receiver),
        ..ReferralFilter::default()
    };
    assert_eq!(
        fixture
            .store
            .list_referrals(
                &staff(fixture.receiver, &[Role::CaseWorker]),
                Scope::Organization(fixture.receiver),
                &incoming,
                None,
                50
            )
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        fixture
            .store
            .list_referrals(
                &staff(fixture.sender, &[Role::CaseWorker]),
                Scope::Organization(fixture.sender),
                &incoming,
                None,
                50
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        fixture
            .store
            .get_referral(
                &staff(stranger, &[Role::CaseWorker]),
                Scope::Organization(stranger),
                referral.id
            )
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_withdrawn_consent_revokes_open_referrals_and_frees_their_places(fixture: Fixture) {
    let facility = fixture.facility("Bakı", 2).await;
    let screening = Uuid::new_v4();
    let referral = fixture.refer(&facility, screening).await;
    let accepted = fixture
        .move_to(fixture.receiver, &referral, ReferralStatus::Accepted)
        .await
        .unwrap()
        .unwrap();
    let other = fixture.refer(&facility, Uuid::new_v4()).await;
    let withdrawal = |sequence: u64, purpose: &str| Event {
        source: "intake".into(),
        sequence,
        event_type: "screening.consent_recorded".into(),
        aggregate_id: screening.to_string(),
        organization_id: fixture.sender.to_string(),
        payload_json: format!("{{\"purpose\":\"{purpose}\",\"given\":false}}"),
        ..Event::default()
    };
    // A refusal of another purpose changes nothing.
    fixture
        .store
        .apply(&withdrawal(1, "reporting"))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .store
            .get_referral(
                &staff(fixture.sender, &[Role::CaseWorker]),
                Scope::All,
                accepted.id
            )
            .await
            .unwrap()
            .unwrap()
            .status,
        ReferralStatus::Accepted
    );
    fixture
        .store
        .apply(&withdrawal(2, "data_sharing"))
        .await
        .unwrap();
    let revoked = fixture
        .store
        .get_referral(
            &staff(fixture.sender, &[Role::CaseWorker]),
            Scope::All,
            accepted.id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, ReferralStatus::Revoked);
    assert!(!revoked.capacity_reserved);
    assert_eq!(
        fixture
            .store
            .get_referral(
                &staff(fixture.sender, &[Role::CaseWorker]),
                Scope::All,
                other.id
            )
            .await
            .unwrap()
            .unwrap()
            .status,
        ReferralStatus::Requested
    );
    assert_eq!(
        fixture
            .store
            .get_facility(facility.id)
            .await
            .unwrap()
            .unwrap()
            .capacity_free,
        2
    );
    // Replayed after a reconnect: applied once.
    fixture
        .store
        .apply(&withdrawal(2, "data_sharing"))
        .await
        .unwrap();
    assert_eq!(fixture.store.checkpoint("intake").await.unwrap(), 2);
}

async fn overdue_answers_and_outcomes_are_listed_for_both_sides(fixture: Fixture) {
    let facility = fixture.facility("Bakı", 0).await;
    let now = OffsetDateTime::now_utc();
    let late = fixture
        .store
        .create_referral(
            &staff(fixture.sender, &[Role::CaseWorker]),
            NewReferral {
                case_id: Uuid::new_v4(),
                case_code: "HV-2026-000002".into(),
                screening_id: Uuid::new_v4(),
                from_organization_id: fixture.sender,
                facility: facility.clone(),
                service_type: "shelter".into(),
                purpose: "a bed".into(),
                urgency: Urgency::Urgent,
                accept_by: now - Duration::hours(1),
                outcome_due_on: (now - Duration::days(1)).date(),
            },
            None,
        )
        .await
        .map(|created| created.record)
        .unwrap();
    let on_time = fixture.refer(&facility, Uuid::new_v4()).await;
    let overdue = ReferralFilter {
        acceptance_overdue: true,
        ..ReferralFilter::default()
    };
    for organization in [fixture.sender, fixture.receiver] {
        let listed = fixture
            .store
            .list_referrals(
                &staff(organization, &[Role::CaseWorker]),
                Scope::Organization(organization),
                &overdue,
                None,
                50,
            )
            .await
            .unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|referral| referral.id)
                .collect::<Vec<_>>(),
            [late.id]
        );
    }
    assert!(late.acceptance_overdue(now));
    assert!(!on_time.acceptance_overdue(now));
    // Accepted but the outcome is late: now on the other list.
    let accepted = fixture
        .move_to(fixture.receiver, &late, ReferralStatus::Accepted)
        .await
        .unwrap()
        .unwrap();
    assert!(!accepted.capacity_reserved, "capacity 0 is not counted");
    let outcome = ReferralFilter {
        outcome_overdue: true,
        ..ReferralFilter::default()
    };
    let listed = fixture
        .store
        .list_referrals(
            &staff(fixture.sender, &[Role::CaseWorker]),
            Scope::Organization(fixture.sender),
            &outcome,
            None,
            50,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].outcome_overdue(OffsetDateTime::now_utc()));
}

async fn a_facility_changes_at_its_version_and_keeps_held_beds(fixture: Fixture) {
    let facility = fixture.facility("Bakı", 3).await;
    let referral = fixture.refer(&facility, Uuid::new_v4()).await;
    fixture
        .move_to(fixture.receiver, &referral, ReferralStatus::Accepted)
        .await
        .unwrap()
        .unwrap();
    let current = fixture
        .store
        .get_facility(facility.id)
        .await
        .unwrap()
        .unwrap();
    let coordinator = staff(fixture.receiver, &[Role::ReferralCoordinator]);
    let mut details = current.details.clone();
    details.capacity_total = 5;
    let updated = fixture
        .store
        .update_facility(
            &coordinator,
            Scope::Organization(fixture.receiver),
            facility.id,
            current.version,
            details.clone(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (updated.details.capacity_total, updated.capacity_free),
        (5, 4),
        "one bed stays held"
    );
    let stale = fixture
        .store
        .update_facility(
            &coordinator,
            Scope::Organization(fixture.receiver),
            facility.id,
            current.version,
            details.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::PreconditionFailed);
    assert!(
        fixture
            .store
            .update_facility(
                &staff(fixture.sender, &[Role::Admin]),
                Scope::Organization(fixture.sender),
                facility.id,
                updated.version,
                details
            )
            .await
            .unwrap()
            .is_none(),
        "another organisation's facility is not theirs to change"
    );
}

haven_storage::backend_suite! {
    setup = setup;
    search_candidates_lie_in_the_box_and_only_active_facilities_with_room,
    fifty_concurrent_acceptances_fill_ten_beds_exactly,
    the_lifecycle_refuses_illegal_moves_and_the_wrong_side,
    a_withdrawn_consent_revokes_open_referrals_and_frees_their_places,
    overdue_answers_and_outcomes_are_listed_for_both_sides,
    a_facility_changes_at_its_version_and_keeps_held_beds,
}
