//! Free texts about a case (reasons, comments, purposes, the legal basis of a seal)
//! on both backends: each reads back for a reader of the case, none is stored in the
//! clear, they read as absent once the person is erased, and rows written in the
//! clear before encryption are encrypted once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditWrite};
use haven_auth::{Principal, PrincipalKind, Role, Scope};
use haven_case::crypto::CaseCrypto;
use haven_case::domain::{
    ActionStatus, Amount, Case, ClosureReason, NeedDomain, PlanAction, PlanGoal, ReviewDecision,
    ServiceStatus, ServiceType,
};
use haven_case::store::{
    self, CaseStore, ClosureRequest, NewCase, NewPayment, NewService, StoreOptions,
};
use haven_case::texts::{CaseText, TextRow};
use haven_config::Settings;
use haven_crypto::MasterKeyring;
use haven_proto::common::v1::Event;
use haven_storage::Database;

struct Fixture {
    store: Arc<dyn CaseStore>,
    database: Database,
    crypto: CaseCrypto,
    data_dir: std::path::PathBuf,
    organization: Uuid,
    partner: Uuid,
}

async fn setup(settings: &Settings) -> Fixture {
    let database = haven_case::connect(settings).await.unwrap();
    let crypto = CaseCrypto::new(Arc::new(MasterKeyring::generate().unwrap()));
    Fixture {
        store: store::open(
            database.clone(),
            haven_events::EventSignal::default(),
            crypto.clone(),
            StoreOptions {
                code_prefix: "AZ".into(),
                allow_self_approval: false,
            },
        ),
        database,
        crypto,
        data_dir: settings.data_dir.clone(),
        organization: Uuid::new_v4(),
        partner: Uuid::new_v4(),
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

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// The text written into each free-text field, recognisable in stored bytes.
fn marker(text: CaseText) -> String {
    format!("Canary {text:?} about Leyla")
}

/// What the scenario left behind, for the checks.
struct Written {
    case: Case,
    transfer_id: Uuid,
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

    /// Reads sealed cases too.
    fn admin(&self) -> AuditContext {
        user("admin", self.organization, &[Role::Admin])
    }

    fn partner_supervisor(&self) -> AuditContext {
        user("partner-boss", self.partner, &[Role::Supervisor])
    }

    async fn open_for(&self, person_id: Uuid) -> Case {
        let new = NewCase {
            screening_id: Uuid::new_v4(),
            organization_id: self.organization,
            person_id: Some(person_id),
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

    async fn add_service_in_progress(&self, case: &Case) {
        self.store
            .add_service(
                &self.worker(),
                self.scope(),
                case.id,
                NewService {
                    service_type: ServiceType::Shelter,
                    provider_organization_id: self.organization,
                    planned_on: None,
                    started_on: Some(today()),
                    ended_on: None,
                    status: ServiceStatus::InProgress,
                },
                None,
            )
            .await
            .map(|created| created.map(|created| created.record))
            .unwrap()
            .unwrap();
    }

    async fn erase(&self, person: Uuid) {
        let erased = Event {
            source: "intake".into(),
            sequence: 1,
            event_type: "person.erased".into(),
            aggregate_id: person.to_string(),
            organization_id: self.organization.to_string(),
            payload_json: format!("{{\"person_id\":\"{person}\"}}"),
            ..Event::default()
        };
        self.store.apply(&erased).await.unwrap();
    }

    /// Writes every free text of a case once, through the store: an approved closure
    /// with an override, a reopening, a rejected transfer, a rejected plan, a payment,
    /// a rejected closure (left on the case) and a seal.
    async fn write_every_text(&self, case: &Case) -> Written {
        let scope = self.scope();
        let worker = self.worker();
        // A service in progress makes closure need an override reason.
        self.add_service_in_progress(case).await;
        let request = ClosureRequest {
            reason: ClosureReason::Other,
            reason_text: marker(CaseText::ClosureReason),
            override_reason: marker(CaseText::ClosureOverride),
        };
        let requested = self
            .store
            .request_closure(&worker, scope, case.id, case.version, request.clone())
            .await
            .unwrap()
            .unwrap();
        let closed = self
            .store
            .review_closure(
                &self.supervisor(),
                scope,
                case.id,
                requested.version,
                ReviewDecision::Approve,
                &marker(CaseText::ClosureReview),
            )
            .await
            .unwrap()
            .unwrap();
        let reopened = self
            .store
            .reopen_case(
                &worker,
                scope,
                case.id,
                closed.version,
                &marker(CaseText::ReopeningReason),
            )
            .await
            .unwrap()
            .unwrap();

        let transfer = self
            .store
            .request_transfer(
                &worker,
                scope,
                case.id,
                reopened.version,
                self.partner,
                &marker(CaseText::TransferReason),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(transfer.reason, marker(CaseText::TransferReason));
        let pending = self.get(case.id).await;
        assert_eq!(
            pending.pending_transfer.unwrap().reason,
            marker(CaseText::TransferReason),
            "the pending transfer of a case shows its reason"
        );
        self.store
            .decide_transfer(
                &self.partner_supervisor(),
                Scope::Organization(self.partner),
                transfer.id,
                ReviewDecision::Reject,
                &marker(CaseText::TransferDecision),
            )
            .await
            .unwrap()
            .unwrap();

        let goals = vec![PlanGoal {
            domain: NeedDomain::Housing,
            goal: "Safe housing".into(),
            actions: vec![PlanAction {
                id: Uuid::now_v7(),
                description: "Find a room".into(),
                responsible_organization_id: self.organization,
                due_on: today(),
                status: ActionStatus::Planned,
            }],
        }];
        let plan = self
            .store
            .submit_plan(&worker, scope, case.id, goals)
            .await
            .unwrap()
            .unwrap();
        let reviewed = self
            .store
            .review_plan(
                &self.supervisor(),
                scope,
                case.id,
                plan.plan_version,
                plan.version,
                ReviewDecision::Reject,
                &marker(CaseText::PlanReview),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reviewed.review_comment, marker(CaseText::PlanReview));

        let paid = self
            .store
            .record_payment(
                &worker,
                scope,
                case.id,
                NewPayment::Payment {
                    amount: Amount::parse("25.00").unwrap(),
                    currency: "AZN".into(),
                    paid_on: today(),
                    purpose: marker(CaseText::PaymentPurpose),
                    service_id: None,
                },
                None,
            )
            .await
            .map(|created| created.map(|created| created.record))
            .unwrap()
            .unwrap();
        assert_eq!(paid.purpose, marker(CaseText::PaymentPurpose));

        let requested = self
            .store
            .request_closure(
                &worker,
                scope,
                case.id,
                self.get(case.id).await.version,
                request,
            )
            .await
            .unwrap()
            .unwrap();
        let rejected = self
            .store
            .review_closure(
                &self.supervisor(),
                scope,
                case.id,
                requested.version,
                ReviewDecision::Reject,
                &marker(CaseText::ClosureReview),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            rejected.closure.unwrap().review_comment,
            marker(CaseText::ClosureReview)
        );
        let case = self
            .store
            .seal_case(&self.admin(), scope, case.id, &marker(CaseText::SealBasis))
            .await
            .unwrap()
            .unwrap();
        Written {
            case,
            transfer_id: transfer.id,
        }
    }

    async fn execute(&self, sql: &str) -> u64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database {
            Database::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        }
    }

    async fn blobs(&self, sql: &str) -> Vec<(i64, Option<Vec<u8>>)> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        }
    }

    async fn texts(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        }
    }

    /// Everything stored: the SQLite files with their WAL, or every row of every
    /// case table as Postgres prints it.
    async fn stored_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        match &self.database {
            Database::Sqlite(_) => files_below(&self.data_dir, &mut bytes),
            Database::Postgres(_) => {
                for table in [
                    "cases",
                    "closures",
                    "transfers",
                    "plans",
                    "reopenings",
                    "payments",
                ] {
                    for row in self.texts(&format!("SELECT t::text FROM {table} t")).await {
                        bytes.extend(row.into_bytes());
                    }
                }
            }
        }
        bytes
    }

    /// Opens a text only readable with the case's key (the seal's basis, a
    /// reopening's reason), as the store would: after auditing a read of the case.
    async fn open_directly(
        &self,
        case_id: Uuid,
        text: CaseText,
        sql: &str,
        row: TextRow,
    ) -> String {
        let query = "SELECT data_key FROM cases WHERE id = $1";
        let entry = self.admin().entry("case.read", "case", case_id);
        let (wrapped, receipt): (Vec<u8>, _) = match &self.database {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                let receipt = AuditWrite::append_audit(&mut *tx, haven_case::SERVICE, &entry)
                    .await
                    .unwrap();
                let wrapped = sqlx::query_scalar(query)
                    .bind(case_id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                (wrapped, receipt)
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                let receipt = AuditWrite::append_audit(&mut *tx, haven_case::SERVICE, &entry)
                    .await
                    .unwrap();
                let wrapped = sqlx::query_scalar(query)
                    .bind(case_id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                (wrapped, receipt)
            }
        };
        let key = self.crypto.open(&receipt, case_id, &wrapped).unwrap();
        let (_, stored) = self.blobs(sql).await.into_iter().next().unwrap();
        text.open(Some(&key), &row, stored.as_deref()).unwrap()
    }
}

fn files_below(dir: &std::path::Path, bytes: &mut Vec<u8>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_below(&path, bytes);
        } else if let Ok(content) = std::fs::read(&path) {
            bytes.extend(content);
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Every text as the case's readers receive it, by field.
async fn readable_texts(fixture: &Fixture, written: &Written) -> Vec<(CaseText, String)> {
    let scope = fixture.scope();
    let reader = fixture.admin();
    let case = fixture
        .store
        .get_case(&reader, scope, written.case.id)
        .await
        .unwrap()
        .unwrap();
    let closure = case.closure.unwrap();
    let transfers = fixture
        .store
        .list_transfers(&reader, scope, Some(written.case.id), false)
        .await
        .unwrap()
        .unwrap();
    let transfer = transfers
        .iter()
        .find(|transfer| transfer.id == written.transfer_id)
        .unwrap();
    let plans = fixture
        .store
        .list_plans(&reader, scope, written.case.id)
        .await
        .unwrap()
        .unwrap();
    let payments = fixture
        .store
        .list_payments(&reader, scope, written.case.id)
        .await
        .unwrap()
        .unwrap();
    vec![
        (CaseText::ClosureReason, closure.reason_text),
        (CaseText::ClosureOverride, closure.override_reason),
        (CaseText::ClosureReview, closure.review_comment),
        (CaseText::TransferReason, transfer.reason.clone()),
        (
            CaseText::TransferDecision,
            transfer.decision_comment.clone(),
        ),
        (CaseText::PlanReview, plans[0].review_comment.clone()),
        (CaseText::PaymentPurpose, payments[0].purpose.clone()),
    ]
}

async fn seal_basis(fixture: &Fixture, case_id: Uuid) -> String {
    fixture
        .open_directly(
            case_id,
            CaseText::SealBasis,
            "SELECT seq, sealed_basis_encrypted FROM cases",
            TextRow::id(case_id),
        )
        .await
}

async fn reopening_reason(fixture: &Fixture, case_id: Uuid) -> String {
    let (seq, _) = fixture
        .blobs("SELECT seq, reason_encrypted FROM reopenings")
        .await
        .into_iter()
        .next()
        .unwrap();
    fixture
        .open_directly(
            case_id,
            CaseText::ReopeningReason,
            "SELECT seq, reason_encrypted FROM reopenings",
            TextRow::reopening(case_id, seq),
        )
        .await
}

async fn every_free_text_reads_back_and_is_never_stored_in_the_clear(fixture: Fixture) {
    let case = fixture.open_for(Uuid::new_v4()).await;
    let written = fixture.write_every_text(&case).await;

    for (text, read) in readable_texts(&fixture, &written).await {
        assert_eq!(read, marker(text), "{text:?} reads back for the case team");
    }
    // The partner, who received the transfer, lists it with its texts too.
    let received = fixture
        .store
        .list_transfers(
            &fixture.partner_supervisor(),
            Scope::Organization(fixture.partner),
            None,
            false,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received[0].reason, marker(CaseText::TransferReason));
    assert_eq!(
        received[0].decision_comment,
        marker(CaseText::TransferDecision)
    );
    let trail = haven_audit::entries_for_record(&fixture.database, "case", case.id, 0, 1000)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|entry| entry.actor == "partner-boss" && entry.action == "case.read"),
        "the partner's list of transfers is audited as a read of the case"
    );
    // Texts no read returns are still bound to their row and open with the case's key.
    assert_eq!(
        seal_basis(&fixture, case.id).await,
        marker(CaseText::SealBasis)
    );
    assert_eq!(
        reopening_reason(&fixture, case.id).await,
        marker(CaseText::ReopeningReason)
    );

    let stored = fixture.stored_bytes().await;
    assert!(
        contains(&stored, &case.code),
        "the check sees what is stored in the clear"
    );
    for text in CaseText::ALL {
        assert!(
            !contains(&stored, &marker(text)),
            "{text:?} is stored in the clear"
        );
    }
    assert!(!contains(&stored, "Leyla"), "a text is stored in the clear");
}

async fn free_texts_read_as_absent_once_the_person_is_erased(fixture: Fixture) {
    let person = Uuid::new_v4();
    let case = fixture.open_for(person).await;
    let written = fixture.write_every_text(&case).await;
    fixture.erase(person).await;

    for (text, read) in readable_texts(&fixture, &written).await {
        assert_eq!(read, "", "{text:?} of an erased person reads as absent");
    }
    // The case's work goes on, but it keeps no new text about the person.
    let paid = fixture
        .store
        .record_payment(
            &fixture.admin(),
            fixture.scope(),
            case.id,
            NewPayment::Payment {
                amount: Amount::parse("5").unwrap(),
                currency: "AZN".into(),
                paid_on: today(),
                purpose: "Canary after erasure".into(),
                service_id: None,
            },
            None,
        )
        .await
        .map(|created| created.map(|created| created.record))
        .unwrap()
        .unwrap();
    assert_eq!(paid.purpose, "");
    assert!(!contains(
        &fixture.stored_bytes().await,
        "Canary after erasure"
    ));
}

async fn an_override_given_before_erasure_still_lets_closure_go_ahead(fixture: Fixture) {
    let person = Uuid::new_v4();
    let case = fixture.open_for(person).await;
    fixture.add_service_in_progress(&case).await;
    let requested = fixture
        .store
        .request_closure(
            &fixture.worker(),
            fixture.scope(),
            case.id,
            case.version,
            ClosureRequest {
                reason: ClosureReason::GoalsAchieved,
                reason_text: String::new(),
                override_reason: marker(CaseText::ClosureOverride),
            },
        )
        .await
        .unwrap()
        .unwrap();
    fixture.erase(person).await;
    let closed = fixture
        .store
        .review_closure(
            &fixture.supervisor(),
            fixture.scope(),
            case.id,
            requested.version,
            ReviewDecision::Approve,
            "",
        )
        .await
        .unwrap()
        .unwrap();
    let closure = closed.closure.unwrap();
    assert_eq!(closure.override_reason, "");
    assert!(closure.overridden);
    assert_eq!(closure.status, haven_case::domain::ApprovalStatus::Approved);
}

async fn texts_written_in_the_clear_are_encrypted_once(fixture: Fixture) {
    let kept = fixture.open_for(Uuid::new_v4()).await;
    let kept = fixture.write_every_text(&kept).await;
    let erased_person = Uuid::new_v4();
    let erased = fixture.open_for(erased_person).await;
    fixture.write_every_text(&erased).await;

    // Put every text back in the clear, as rows written before encryption hold them.
    let mut in_the_clear = 0;
    for text in CaseText::ALL {
        in_the_clear += fixture
            .execute(&format!(
                "UPDATE {table} SET {column} = 'Legacy {text:?}', {encrypted} = NULL \
                 WHERE {encrypted} IS NOT NULL",
                table = text.table(),
                column = text.column(),
                encrypted = text.encrypted_column(),
            ))
            .await;
    }
    assert!(
        in_the_clear >= 2 * 9,
        "{in_the_clear} texts put in the clear"
    );
    fixture.erase(erased_person).await;

    let encrypted = fixture.store.encrypt_plaintext_texts().await.unwrap();
    assert_eq!(encrypted, in_the_clear);
    assert_eq!(
        fixture.store.encrypt_plaintext_texts().await.unwrap(),
        0,
        "a second start encrypts nothing again"
    );

    for text in CaseText::ALL {
        let left = fixture
            .texts(&format!(
                "SELECT {column} FROM {table} WHERE {column} <> ''",
                column = text.column(),
                table = text.table(),
            ))
            .await;
        assert!(left.is_empty(), "{text:?} left in the clear: {left:?}");
    }
    for (text, read) in readable_texts(&fixture, &kept).await {
        assert_eq!(read, format!("Legacy {text:?}"), "{text:?} reads back");
    }
    let for_erased = Written {
        case: erased.clone(),
        transfer_id: fixture
            .store
            .list_transfers(&fixture.admin(), fixture.scope(), Some(erased.id), false)
            .await
            .unwrap()
            .unwrap()[0]
            .id,
    };
    for (text, read) in readable_texts(&fixture, &for_erased).await {
        assert_eq!(read, "", "{text:?} of the erased person is dropped");
    }
}

haven_storage::backend_suite! {
    setup = setup;
    every_free_text_reads_back_and_is_never_stored_in_the_clear,
    free_texts_read_as_absent_once_the_person_is_erased,
    an_override_given_before_erasure_still_lets_closure_go_ahead,
    texts_written_in_the_clear_are_encrypted_once,
}
