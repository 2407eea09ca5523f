//! Case management on both backends: plans with approval, services and the cash
//! ledger, follow-ups, notes, closure and reopening, transfers, list filters, the
//! timeline, and erasure of narratives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_case::crypto::CaseCrypto;
use haven_case::domain::{
    ActionStatus, Amount, ApprovalStatus, Case, CaseStage, CaseStatus, ClosureReason, FollowUpKind,
    FollowUpOutcome, NeedDomain, NoteVisibility, PlanAction, PlanGoal, ReviewDecision, RiskLevel,
    ServiceStatus, ServiceType, payment_totals,
};
use haven_case::store::{
    self, CaseChanges, CaseFilter, CaseStore, ClosureRequest, FollowUpFilter, NewCase, NewPayment,
    NewService, ServiceChanges, StoreOptions,
};
use haven_config::Settings;
use haven_crypto::MasterKeyring;
use haven_error::ErrorCode;
use haven_events::EventSignal;
use haven_proto::common::v1::Event;
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn CaseStore>,
    database: Database,
    organization: Uuid,
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
        organization: Uuid::new_v4(),
    }
}

fn user(subject: &str, organization: Uuid, roles: &[Role]) -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: subject.into(),
            organization_id: organization,
            roles: roles.to_vec(),
            kind: PrincipalKind::User,
        },
        purpose: "assistance".into(),
        request_id: "req-1".into(),
        on_behalf_of: None,
    }
}

fn intake() -> AuditContext {
    AuditContext {
        principal: Principal {
            subject: "service:intake".into(),
            organization_id: Uuid::nil(),
            roles: vec![Role::Service],
            kind: PrincipalKind::Service,
        },
        purpose: "assistance".into(),
        request_id: "req-0".into(),
        on_behalf_of: None,
    }
}

impl Fixture {
    fn scope(&self) -> Scope {
        Scope::Organization(self.organization)
    }

    fn worker(&self) -> AuditContext {
        user("aysel", self.organization, &[Role::CaseWorker])
    }

    fn supervisor(&self) -> AuditContext {
        user("rashad", self.organization, &[Role::Supervisor])
    }

    async fn open(&self) -> Case {
        self.open_for(Some(Uuid::new_v4())).await
    }

    async fn open_for(&self, person_id: Option<Uuid>) -> Case {
        let new = NewCase {
            screening_id: Uuid::new_v4(),
            organization_id: self.organization,
            person_id,
        };
        self.store.open_case(&intake(), new).await.unwrap().0
    }

    async fn get(&self, id: Uuid) -> Case {
        self.store
            .get_case(&self.worker(), self.scope(), id)
            .await
            .unwrap()
            .unwrap()
    }

    async fn add_service(&self, case: &Case, status: ServiceStatus) -> Uuid {
        let new = NewService {
            service_type: ServiceType::Shelter,
            provider_organization_id: self.organization,
            planned_on: None,
            started_on: Some(today()),
            ended_on: None,
            status,
        };
        self.store
            .add_service(&self.worker(), self.scope(), case.id, new, None)
            .await
            .map(|created| created.map(|created| created.record))
            .unwrap()
            .unwrap()
            .id
    }

    async fn stored_bytes(&self, table: &str) -> Vec<Vec<u8>> {
        let query = match table {
            "note" => "SELECT body FROM notes",
            _ => "SELECT content FROM plans",
        };
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_scalar(query).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_scalar(query).fetch_all(pool).await.unwrap(),
        }
    }
}

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn goals(organization: Uuid, due_on: Date) -> Vec<PlanGoal> {
    vec![PlanGoal {
        domain: NeedDomain::Housing,
        goal: "Safe housing near Leyla's sister in Ganja".into(),
        actions: vec![PlanAction {
            id: Uuid::now_v7(),
            description: "Find a rented room".into(),
            responsible_organization_id: organization,
            due_on,
            status: ActionStatus::Planned,
        }],
    }]
}

async fn a_plan_needs_another_persons_approval_and_its_text_is_encrypted(fixture: Fixture) {
    let case = fixture.open().await;
    let scope = fixture.scope();
    let worker = fixture.worker();
    let submitted = fixture
        .store
        .submit_plan(
            &worker,
            scope,
            case.id,
            goals(fixture.organization, today()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(submitted.plan_version, 1);
    assert_eq!(submitted.status, ApprovalStatus::Requested);

    // The author cannot approve their own plan, even holding the supervisor role.
    let author_as_supervisor = user("aysel", fixture.organization, &[Role::Supervisor]);
    let refused = fixture
        .store
        .review_plan(
            &author_as_supervisor,
            scope,
            case.id,
            1,
            submitted.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::PermissionDenied);

    let stale = fixture
        .store
        .review_plan(
            &fixture.supervisor(),
            scope,
            case.id,
            1,
            submitted.version + 1,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::PreconditionFailed);

    let approved = fixture
        .store
        .review_plan(
            &fixture.supervisor(),
            scope,
            case.id,
            1,
            submitted.version,
            ReviewDecision::Approve,
            "good",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.reviewed_by, "rashad");
    assert_eq!(approved.goals, submitted.goals);
    let again = fixture
        .store
        .review_plan(
            &fixture.supervisor(),
            scope,
            case.id,
            1,
            approved.version,
            ReviewDecision::Reject,
            "no",
        )
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        ErrorCode::Conflict,
        "a decided plan is not reviewed twice"
    );

    // A new version replaces the approved one only once it is approved itself.
    let second = fixture
        .store
        .submit_plan(
            &worker,
            scope,
            case.id,
            goals(fixture.organization, today()),
        )
        .await
        .unwrap()
        .unwrap();
    fixture
        .store
        .review_plan(
            &fixture.supervisor(),
            scope,
            case.id,
            2,
            second.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    let plans = fixture
        .store
        .list_plans(&worker, scope, case.id)
        .await
        .unwrap()
        .unwrap();
    let statuses: Vec<_> = plans.iter().map(|plan| plan.status).collect();
    assert_eq!(
        statuses,
        [ApprovalStatus::Superseded, ApprovalStatus::Approved]
    );
    assert_eq!(
        plans[1].goals[0].goal,
        "Safe housing near Leyla's sister in Ganja"
    );

    // Tracking an action bumps the plan's version; a stale one loses.
    let action = plans[1].goals[0].actions[0].id;
    let tracked = fixture
        .store
        .update_plan_action(
            &worker,
            scope,
            case.id,
            2,
            action,
            plans[1].version,
            ActionStatus::Done,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tracked.goals[0].actions[0].status, ActionStatus::Done);
    let lost = fixture
        .store
        .update_plan_action(
            &worker,
            scope,
            case.id,
            2,
            action,
            plans[1].version,
            ActionStatus::Cancelled,
        )
        .await
        .unwrap_err();
    assert_eq!(lost.code(), ErrorCode::PreconditionFailed);

    for stored in fixture.stored_bytes("plan").await {
        let text = String::from_utf8_lossy(&stored);
        assert!(!text.contains("Leyla"), "plan content is stored encrypted");
    }
}

async fn closure_waits_for_services_and_approval_and_a_closed_case_reopens(fixture: Fixture) {
    let case = fixture.open().await;
    let scope = fixture.scope();
    let worker = fixture.worker();
    let service = fixture.add_service(&case, ServiceStatus::InProgress).await;
    let request = |override_reason: &str| ClosureRequest {
        reason: ClosureReason::GoalsAchieved,
        reason_text: String::new(),
        override_reason: override_reason.into(),
    };
    let blocked = fixture
        .store
        .request_closure(&worker, scope, case.id, case.version, request(""))
        .await
        .unwrap_err();
    assert_eq!(blocked.code(), ErrorCode::Conflict);
    assert!(
        blocked.message().contains("in progress"),
        "{}",
        blocked.message()
    );

    // Finish the service; then closure can be asked for.
    fixture
        .store
        .update_service(
            &worker,
            scope,
            case.id,
            service,
            1,
            ServiceChanges {
                status: Some(ServiceStatus::Delivered),
                ended_on: Some(today()),
                ..ServiceChanges::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let backwards = fixture
        .store
        .update_service(
            &worker,
            scope,
            case.id,
            service,
            2,
            ServiceChanges {
                status: Some(ServiceStatus::InProgress),
                ..ServiceChanges::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        backwards.code(),
        ErrorCode::Conflict,
        "a delivered service stays delivered"
    );

    let pending = fixture
        .store
        .request_closure(&worker, scope, case.id, case.version, request(""))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pending.status,
        CaseStatus::Active,
        "not closed before approval"
    );
    let closure = pending.closure.clone().unwrap();
    assert_eq!(closure.status, ApprovalStatus::Requested);
    assert_eq!(closure.requested_by, "aysel");

    let own = user("aysel", fixture.organization, &[Role::Supervisor]);
    let refused = fixture
        .store
        .review_closure(
            &own,
            scope,
            case.id,
            pending.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::PermissionDenied);

    let closed = fixture
        .store
        .review_closure(
            &fixture.supervisor(),
            scope,
            case.id,
            pending.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.status, CaseStatus::Closed);
    assert_eq!(closed.stage, CaseStage::Closed);
    assert_eq!(
        closed.closure.as_ref().unwrap().status,
        ApprovalStatus::Approved
    );

    // Nothing new is planned on a closed case until it is reopened.
    let refused = fixture
        .store
        .schedule_follow_up(
            &worker,
            scope,
            case.id,
            FollowUpKind::Call,
            today(),
            "aysel",
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Conflict);

    let stale = fixture
        .store
        .reopen_case(&worker, scope, case.id, pending.version, "she came back")
        .await
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::PreconditionFailed);
    let reopened = fixture
        .store
        .reopen_case(&worker, scope, case.id, closed.version, "she came back")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reopened.status, CaseStatus::Active);
    assert_eq!(reopened.stage, CaseStage::Assessment);
    assert!(reopened.closure.is_none());
    let not_closed = fixture
        .store
        .reopen_case(&worker, scope, case.id, reopened.version, "again")
        .await
        .unwrap_err();
    assert_eq!(not_closed.code(), ErrorCode::Conflict);

    // An override lets closure go ahead while a service runs; referred elsewhere
    // ends as closed-referred.
    fixture
        .add_service(&reopened, ServiceStatus::InProgress)
        .await;
    let pending = fixture
        .store
        .request_closure(
            &worker,
            scope,
            case.id,
            reopened.version,
            ClosureRequest {
                reason: ClosureReason::ReferredElsewhere,
                reason_text: String::new(),
                override_reason: "moved to a specialised shelter".into(),
            },
        )
        .await
        .unwrap()
        .unwrap();
    let closed = fixture
        .store
        .review_closure(
            &fixture.supervisor(),
            scope,
            case.id,
            pending.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.status, CaseStatus::ClosedReferred);

    let timeline = fixture
        .store
        .timeline(&worker, scope, case.id)
        .await
        .unwrap()
        .unwrap();
    let types: Vec<&str> = timeline
        .iter()
        .map(|entry| entry.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "case.opened",
            "case.service_added",
            "case.service_updated",
            "case.closure_requested",
            "case.closed",
            "case.reopened",
            "case.service_added",
            "case.closure_requested",
            "case.closed",
        ]
    );
    assert!(
        timeline
            .windows(2)
            .all(|pair| pair[0].sequence < pair[1].sequence)
    );
}

async fn a_transfer_gives_access_only_on_acceptance(fixture: Fixture) {
    let case = fixture.open().await;
    let scope = fixture.scope();
    let receiver = Uuid::new_v4();
    let receiving = user("farid", receiver, &[Role::Supervisor]);
    let transfer = fixture
        .store
        .request_transfer(
            &fixture.worker(),
            scope,
            case.id,
            case.version,
            receiver,
            "moving to Baku",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(transfer.status, ApprovalStatus::Requested);
    let again = fixture
        .store
        .request_transfer(
            &fixture.worker(),
            scope,
            case.id,
            case.version + 1,
            receiver,
            "twice",
        )
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        ErrorCode::Conflict,
        "one pending transfer at a time"
    );

    // Before acceptance the receiver sees the request, not the case.
    let receiver_scope = Scope::Organization(receiver);
    assert!(
        fixture
            .store
            .get_case(&receiving, receiver_scope, case.id)
            .await
            .unwrap()
            .is_none()
    );
    let incoming = fixture
        .store
        .list_transfers(&receiving, receiver_scope, None, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].case_code, case.code);
    // Only the receiving organisation decides.
    let stranger = Uuid::new_v4();
    assert!(
        fixture
            .store
            .decide_transfer(
                &user("x", stranger, &[Role::Supervisor]),
                Scope::Organization(stranger),
                transfer.id,
                ReviewDecision::Approve,
                ""
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        fixture
            .store
            .decide_transfer(
                &fixture.supervisor(),
                scope,
                transfer.id,
                ReviewDecision::Approve,
                ""
            )
            .await
            .unwrap()
            .is_none(),
        "the sender cannot accept on the receiver's behalf"
    );

    let accepted = fixture
        .store
        .decide_transfer(
            &receiving,
            receiver_scope,
            transfer.id,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.status, ApprovalStatus::Approved);
    let owned = fixture
        .store
        .get_case(&receiving, receiver_scope, case.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owned.organization_id, receiver);
    assert!(owned.pending_transfer.is_none());
    assert!(
        fixture
            .store
            .get_case(&fixture.worker(), scope, case.id)
            .await
            .unwrap()
            .is_none(),
        "the sender lost access"
    );
    let twice = fixture
        .store
        .decide_transfer(
            &receiving,
            receiver_scope,
            transfer.id,
            ReviewDecision::Reject,
            "no",
        )
        .await
        .unwrap_err();
    assert_eq!(twice.code(), ErrorCode::Conflict);

    // A rejected transfer leaves the case where it was.
    let other = fixture.open().await;
    let transfer = fixture
        .store
        .request_transfer(
            &fixture.worker(),
            scope,
            other.id,
            other.version,
            receiver,
            "closer to home",
        )
        .await
        .unwrap()
        .unwrap();
    fixture
        .store
        .decide_transfer(
            &receiving,
            receiver_scope,
            transfer.id,
            ReviewDecision::Reject,
            "no beds",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fixture.get(other.id).await.organization_id,
        fixture.organization
    );
    assert!(
        fixture
            .store
            .get_case(&receiving, receiver_scope, other.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn the_ledger_totals_payments_and_reversals(fixture: Fixture) {
    let case = fixture.open().await;
    let scope = fixture.scope();
    let worker = fixture.worker();
    let pay = |amount: &str, currency: &str| NewPayment::Payment {
        amount: Amount::parse(amount).unwrap(),
        currency: currency.into(),
        paid_on: today(),
        purpose: "rent".into(),
        service_id: None,
    };
    let first = fixture
        .store
        .record_payment(&worker, scope, case.id, pay("150.00", "AZN"), None)
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    fixture
        .store
        .record_payment(&worker, scope, case.id, pay("49.50", "AZN"), None)
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    fixture
        .store
        .record_payment(&worker, scope, case.id, pay("20", "USD"), None)
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    let reversal = NewPayment::Reversal {
        payment_id: first.id,
        paid_on: today(),
        purpose: "typo".into(),
    };
    let reversed = fixture
        .store
        .record_payment(&worker, scope, case.id, reversal.clone(), None)
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    assert_eq!(reversed.amount, Amount(-15_000));
    let twice = fixture
        .store
        .record_payment(&worker, scope, case.id, reversal, None)
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap_err();
    assert_eq!(twice.code(), ErrorCode::Conflict);
    let not_cash = fixture.add_service(&case, ServiceStatus::Planned).await;
    let wrong_service = fixture
        .store
        .record_payment(
            &worker,
            scope,
            case.id,
            NewPayment::Payment {
                amount: Amount(100),
                currency: "AZN".into(),
                paid_on: today(),
                purpose: "rent".into(),
                service_id: Some(not_cash),
            },
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap_err();
    assert_eq!(wrong_service.code(), ErrorCode::InvalidArgument);

    let ledger = fixture
        .store
        .list_payments(&worker, scope, case.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ledger.len(), 4);
    let totals: Vec<(String, String)> = payment_totals(&ledger)
        .into_iter()
        .map(|(currency, amount)| (currency, amount.to_string()))
        .collect();
    assert_eq!(
        totals,
        [
            ("AZN".into(), "49.50".into()),
            ("USD".into(), "20.00".into())
        ]
    );
}

async fn lists_filter_by_caseworker_risk_stage_and_overdue_work(fixture: Fixture) {
    let scope = fixture.scope();
    let supervisor = fixture.supervisor();
    let worker = fixture.worker();
    let quiet = fixture.open().await;
    let risky = fixture.open().await;
    let late = fixture.open().await;
    let updated = fixture
        .store
        .update_case(
            &supervisor,
            scope,
            risky.id,
            risky.version,
            CaseChanges {
                risk_level: Some(RiskLevel::High),
                flags: Some(vec!["minor".into()]),
                caseworkers: Some(vec!["aysel".into(), "nigar".into()]),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.caseworkers, ["aysel", "nigar"]);
    assert_eq!(updated.flags, ["minor"]);
    let lost = fixture
        .store
        .update_case(
            &supervisor,
            scope,
            risky.id,
            risky.version,
            CaseChanges {
                risk_level: Some(RiskLevel::Low),
                ..CaseChanges::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        lost.code(),
        ErrorCode::PreconditionFailed,
        "two editors: the second loses"
    );

    let yesterday = today() - Duration::days(1);
    let overdue = fixture
        .store
        .schedule_follow_up(
            &worker,
            scope,
            late.id,
            FollowUpKind::Visit,
            yesterday,
            "aysel",
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    fixture
        .store
        .schedule_follow_up(
            &worker,
            scope,
            quiet.id,
            FollowUpKind::Call,
            today() + Duration::days(7),
            "nigar",
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    let plan = fixture
        .store
        .submit_plan(
            &worker,
            scope,
            quiet.id,
            goals(fixture.organization, yesterday),
        )
        .await
        .unwrap()
        .unwrap();

    let ids = |cases: Vec<Case>| cases.into_iter().map(|case| case.id).collect::<Vec<_>>();
    let list = |filter: CaseFilter| {
        let store = fixture.store.clone();
        let worker = fixture.worker();
        async move {
            ids(store
                .list_cases(&worker, scope, &filter, None, 50)
                .await
                .unwrap())
        }
    };
    assert_eq!(
        list(CaseFilter {
            caseworker: Some("nigar".into()),
            ..CaseFilter::default()
        })
        .await,
        [risky.id]
    );
    assert_eq!(
        list(CaseFilter {
            risk_level: Some(RiskLevel::High),
            ..CaseFilter::default()
        })
        .await,
        [risky.id]
    );
    assert_eq!(
        list(CaseFilter {
            overdue_follow_up: true,
            ..CaseFilter::default()
        })
        .await,
        [late.id]
    );
    assert!(
        list(CaseFilter {
            overdue_plan_action: true,
            ..CaseFilter::default()
        })
        .await
        .is_empty(),
        "a plan waiting for approval has no tracked actions yet"
    );
    fixture
        .store
        .review_plan(
            &supervisor,
            scope,
            quiet.id,
            1,
            plan.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        list(CaseFilter {
            overdue_plan_action: true,
            ..CaseFilter::default()
        })
        .await,
        [quiet.id]
    );
    assert_eq!(
        list(CaseFilter {
            stage: Some(CaseStage::New),
            ..CaseFilter::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        list(CaseFilter {
            organization_id: Some(Uuid::new_v4()),
            ..CaseFilter::default()
        })
        .await
        .is_empty()
    );

    // The caseworker's overdue list; once the visit is done it leaves the list.
    let mine = |overdue_only| FollowUpFilter {
        case_id: None,
        assigned_to: Some("aysel".into()),
        overdue_only,
        today: today(),
    };
    let overdue_list = fixture
        .store
        .list_follow_ups(&worker, scope, &mine(true), None, 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(overdue_list.len(), 1);
    assert!(overdue_list[0].1.is_overdue(today()));
    assert_eq!(overdue_list[0].1.case_code, late.code);
    fixture
        .store
        .record_follow_up_outcome(
            &worker,
            scope,
            late.id,
            overdue.id,
            overdue.version,
            FollowUpOutcome::Completed,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        fixture
            .store
            .list_follow_ups(&worker, scope, &mine(true), None, 50)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert!(
        list(CaseFilter {
            overdue_follow_up: true,
            ..CaseFilter::default()
        })
        .await
        .is_empty()
    );
    let twice = fixture
        .store
        .record_follow_up_outcome(
            &worker,
            scope,
            late.id,
            overdue.id,
            overdue.version + 1,
            FollowUpOutcome::Declined,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert_eq!(twice.code(), ErrorCode::Conflict);
}

async fn notes_are_encrypted_filtered_by_visibility_and_erased_with_the_person(fixture: Fixture) {
    let person = Uuid::new_v4();
    let case = fixture.open_for(Some(person)).await;
    let scope = fixture.scope();
    let worker = fixture.worker();
    fixture
        .store
        .add_note(
            &worker,
            scope,
            case.id,
            NoteVisibility::CaseTeam,
            "Met Leyla at the shelter",
        )
        .await
        .unwrap()
        .unwrap();
    fixture
        .store
        .add_note(
            &worker,
            scope,
            case.id,
            NoteVisibility::Supervisors,
            "Disclosed the recruiter's name",
        )
        .await
        .unwrap()
        .unwrap();
    let team_only = fixture
        .store
        .list_notes(&worker, scope, case.id, &[NoteVisibility::CaseTeam])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team_only.len(), 1);
    assert_eq!(team_only[0].body, "Met Leyla at the shelter");
    let all = fixture
        .store
        .list_notes(
            &fixture.supervisor(),
            scope,
            case.id,
            &[NoteVisibility::CaseTeam, NoteVisibility::Supervisors],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.len(), 2);
    for stored in fixture.stored_bytes("note").await {
        let text = String::from_utf8_lossy(&stored);
        assert!(!text.contains("Leyla") && !text.contains("recruiter"));
    }
    let events = haven_events::feed::events_after(&fixture.database, "case", 0, 100)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|event| !event.payload_json.contains("Leyla"))
    );

    // Intake erases the person: the case's key goes, the notes become unreadable.
    let erased = Event {
        source: "intake".into(),
        sequence: 7,
        event_type: "person.erased".into(),
        aggregate_id: person.to_string(),
        organization_id: fixture.organization.to_string(),
        payload_json: format!("{{\"person_id\":\"{person}\"}}"),
        ..Event::default()
    };
    fixture.store.apply(&erased).await.unwrap();
    fixture.store.apply(&erased).await.unwrap();
    assert_eq!(fixture.store.checkpoint("intake").await.unwrap(), 7);
    let after = fixture
        .store
        .list_notes(
            &fixture.supervisor(),
            scope,
            case.id,
            &[NoteVisibility::CaseTeam, NoteVisibility::Supervisors],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|note| note.body.is_empty()));
    let refused = fixture
        .store
        .add_note(&worker, scope, case.id, NoteVisibility::CaseTeam, "more")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Conflict);
}

haven_storage::backend_suite! {
    setup = setup;
    a_plan_needs_another_persons_approval_and_its_text_is_encrypted,
    closure_waits_for_services_and_approval_and_a_closed_case_reopens,
    a_transfer_gives_access_only_on_acceptance,
    the_ledger_totals_payments_and_reversals,
    lists_filter_by_caseworker_risk_stage_and_overdue_work,
    notes_are_encrypted_filtered_by_visibility_and_erased_with_the_person,
}
