//! Referrals between organisations: recorded by the case's owner, read by either
//! side (every read audited, the audit entry's receipt opening the texts), moved
//! through their lifecycle holding and releasing places at the facility.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditWrite, Receipt};
use haven_auth::Scope;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_events::{NewEvent, OutboxWrite};
use haven_storage::db_error;
use haven_storage::idempotency::{CallerKey, Claim, Created, claim, earlier};
use haven_storage::sql::{self, Tx};

use super::rows::{ReferralRow, SealedReferral, corrupt, replayed_id};
use super::{Directory, NewReferral, ReferralFilter, StatusChange, texts};
use crate::SERVICE;
use crate::crypto::{self, TextColumn};
use crate::domain::{Referral, ReferralStatus, Side};

/// The audit action of reading a referral's texts.
const READ_ACTION: &str = "referral.read";

/// Referral columns (a literal, so that each statement below is one constant).
macro_rules! select_referral {
    () => {
        "SELECT seq, id, case_id, case_code, screening_id, from_organization_id, \
         to_organization_id, facility_id, service_type, purpose, urgency, requested_by, requested_at, accept_by, \
         outcome_due_on, status, status_reason, outcome, capacity_reserved, version, updated_at, data_key, shredded \
         FROM referrals"
    };
}

const SELECT_BY_ID: &str = concat!(select_referral!(), " WHERE id = $1");
const SELECT_PAGE: &str = concat!(
    select_referral!(),
    " WHERE seq > $1 \
     AND ($2 IS NULL OR (($3 IS NULL OR $3 = 'sender') AND from_organization_id = $2) \
                     OR (($3 IS NULL OR $3 = 'receiver') AND to_organization_id = $2)) \
     AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR case_id = $5) \
     AND ($6 = FALSE OR (status = 'requested' AND accept_by < $7)) \
     AND ($8 = FALSE OR (status IN ('accepted', 'in_progress') AND outcome_due_on < $9)) \
     ORDER BY seq LIMIT $10"
);
const INSERT: &str = "INSERT INTO referrals (id, case_id, case_code, screening_id, from_organization_id, to_organization_id, facility_id, \
     service_type, purpose, urgency, requested_by, requested_at, accept_by, outcome_due_on, status, version, updated_at, data_key) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'requested', 1, $12, $15)";
/// One statement decides whether a place is free, so concurrent acceptances never
/// overbook.
const HOLD_PLACE: &str = "UPDATE facilities SET capacity_free = capacity_free - 1, version = version + 1 \
     WHERE id = $1 AND capacity_total > 0 AND capacity_free > 0";
const SELECT_CAPACITY: &str = "SELECT capacity_total FROM facilities WHERE id = $1";
const RELEASE_PLACE: &str = "UPDATE facilities SET capacity_free = capacity_free + 1, version = version + 1 \
     WHERE id = $1 AND capacity_free < capacity_total";
const UPDATE_STATUS: &str = "UPDATE referrals SET status = $3, status_reason = COALESCE($4, status_reason), outcome = COALESCE($5, outcome), \
     capacity_reserved = $6, version = version + 1, updated_at = $7 WHERE id = $1 AND version = $2";

/// Records a referral (a retry with `once` answers with the first one, its read
/// audited).
pub(super) async fn create(
    directory: &Directory,
    context: &AuditContext,
    new: NewReferral,
    once: Option<&CallerKey>,
) -> HavenResult<Created<Referral>> {
    let id = Uuid::now_v7();
    let now = OffsetDateTime::now_utc();
    let (key, wrapped_key) = directory.crypto.generate(id)?;
    let purpose = crypto::seal(&key, TextColumn::Purpose, id, &new.purpose)?;
    let mut tx = directory.database.begin_write().await?;
    if let Claim::Replay(earlier) = claim(&mut tx, once, &id.to_string()).await? {
        let referral = replay(directory, &mut tx, context, &earlier).await?;
        tx.commit().await?;
        return Ok(Created::replay(referral));
    }
    sql::query(INSERT)
        .bind(id)
        .bind(new.case_id)
        .bind(&new.case_code)
        .bind(new.screening_id)
        .bind(new.from_organization_id)
        .bind(new.facility.organization_id)
        .bind(new.facility.id)
        .bind(&new.service_type)
        .bind(purpose)
        .bind(new.urgency.as_str())
        .bind(&context.principal.subject)
        .bind(now)
        .bind(new.accept_by)
        .bind(new.outcome_due_on.to_string())
        .bind(wrapped_key)
        .execute(&mut tx)
        .await?;
    let sealed = sealed_referral(&mut tx, id)
        .await?
        .ok_or_else(|| corrupt("referral"))?;
    // The request's own entry is the receipt that opens what it returns.
    let receipt = record(&mut tx, context, &sealed.referral, "referral.requested").await?;
    let referral = sealed.open(&directory.crypto, &receipt)?;
    tx.commit().await?;
    directory.signal.notify();
    Ok(Created::new(referral))
}

/// The referral an earlier request with `once` recorded, if any, its read audited.
pub(super) async fn replayed(
    directory: &Directory,
    context: &AuditContext,
    once: &CallerKey,
) -> HavenResult<Option<Referral>> {
    let mut tx = directory.database.begin_write().await?;
    let Some(first) = earlier(&mut tx, once).await? else {
        return Ok(None);
    };
    let referral = replay(directory, &mut tx, context, &first).await?;
    tx.commit().await?;
    Ok(Some(referral))
}

/// A referral the organisation of `scope` sent or received, its read audited.
pub(super) async fn get(
    directory: &Directory,
    context: &AuditContext,
    scope: Scope,
    id: Uuid,
) -> HavenResult<Option<Referral>> {
    let mut tx = directory.database.begin_write().await?;
    let Some(sealed) = sealed_referral(&mut tx, id).await?.filter(|sealed| {
        scope.contains(sealed.referral.from_organization_id)
            || scope.contains(sealed.referral.to_organization_id)
    }) else {
        return Ok(None);
    };
    let receipt = audit_read(&mut tx, context, sealed.referral.id).await?;
    let referral = sealed.open(&directory.crypto, &receipt)?;
    tx.commit().await?;
    Ok(Some(referral))
}

/// Referrals the organisation of `scope` sent or received, after the cursor; one
/// audit entry per referral returned.
pub(super) async fn list(
    directory: &Directory,
    context: &AuditContext,
    scope: Scope,
    filter: &ReferralFilter,
    after: Option<i64>,
    limit: u32,
) -> HavenResult<Vec<Referral>> {
    let now = OffsetDateTime::now_utc();
    let mut tx = directory.database.begin_write().await?;
    let organization = scope.organization();
    let rows: Vec<ReferralRow> = sql::query_as(SELECT_PAGE)
        .bind(after.unwrap_or(0))
        .bind(organization)
        .bind(filter.side.map(|side| match side {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }))
        .bind(filter.status.map(ReferralStatus::as_str))
        .bind(filter.case_id)
        .bind(filter.acceptance_overdue)
        .bind(now)
        .bind(filter.outcome_overdue)
        .bind(now.date().to_string())
        .bind(i64::from(limit))
        .fetch_all(&mut tx)
        .await?;
    let mut referrals = Vec::with_capacity(rows.len());
    for row in rows {
        let sealed = row.into_sealed()?;
        let receipt = audit_read(&mut tx, context, sealed.referral.id).await?;
        referrals.push(sealed.open(&directory.crypto, &receipt)?);
    }
    tx.commit().await?;
    Ok(referrals)
}

/// Moves a referral at `expected_version` for a caller acting for one of its sides;
/// `None` when the caller acts for neither.
pub(super) async fn change_status(
    directory: &Directory,
    context: &AuditContext,
    scope: Scope,
    id: Uuid,
    expected_version: i64,
    change: StatusChange,
) -> HavenResult<Option<Referral>> {
    let mut tx = directory.database.begin_write().await?;
    let Some(SealedReferral { referral, .. }) = sealed_referral(&mut tx, id).await? else {
        return Ok(None);
    };
    let sender = scope.contains(referral.from_organization_id);
    let receiver = scope.contains(referral.to_organization_id);
    if !sender && !receiver {
        return Ok(None);
    }
    change.to.check_mover(sender, receiver)?;
    if referral.version != expected_version {
        return Err(HavenError::new(
            ErrorCode::PreconditionFailed,
            format!(
                "the referral changed since you read it (now at version {})",
                referral.version
            ),
        ));
    }
    let next = apply_change(directory, &mut tx, &referral, &change).await?;
    // The move's own entry is the receipt that opens what it returns.
    let receipt = record(&mut tx, context, &next.referral, event_type(change.to)).await?;
    let next = next.open(&directory.crypto, &receipt)?;
    tx.commit().await?;
    directory.signal.notify();
    Ok(Some(next))
}

/// The referral `id`, its texts still sealed.
pub(super) async fn sealed_referral(tx: &mut Tx, id: Uuid) -> HavenResult<Option<SealedReferral>> {
    let row: Option<ReferralRow> = sql::query_as(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(tx)
        .await?;
    row.map(ReferralRow::into_sealed).transpose()
}

/// The referral's event (categorical facts only) and audit entry, whose receipt opens
/// the referral's texts.
pub(super) async fn record(
    tx: &mut Tx,
    context: &AuditContext,
    referral: &Referral,
    event_type: &'static str,
) -> HavenResult<Receipt> {
    let event = NewEvent {
        event_type,
        aggregate_id: referral.id,
        organization_id: referral.from_organization_id,
        payload: serde_json::json!({
            "referral_id": referral.id,
            "case_id": referral.case_id,
            "from_organization_id": referral.from_organization_id,
            "to_organization_id": referral.to_organization_id,
            "facility_id": referral.facility_id,
            "service_type": referral.service_type,
            "urgency": referral.urgency.as_str(),
            "status": referral.status.as_str(),
            "on": referral.updated_at.date().to_string(),
            "accept_by": referral.accept_by.unix_timestamp(),
            "outcome_due_on": referral.outcome_due_on.to_string(),
            "capacity_reserved": referral.capacity_reserved,
        }),
    };
    OutboxWrite::append_event(tx, SERVICE, &event)
        .await
        .map_err(db_error)?;
    AuditWrite::append_audit(
        tx,
        SERVICE,
        &context.entry(event_type, "referral", referral.id),
    )
    .await
    .map_err(db_error)
}

/// Moves a referral (already authorised and at the expected version), holding a place
/// on acceptance and releasing it when the stay ends. The referral moved is returned
/// with its texts sealed.
pub(super) async fn apply_change(
    directory: &Directory,
    tx: &mut Tx,
    referral: &Referral,
    change: &StatusChange,
) -> HavenResult<SealedReferral> {
    referral.status.check_move_to(change.to)?;
    let mut reserved = referral.capacity_reserved;
    if change.to == ReferralStatus::Accepted {
        let held = sql::query(HOLD_PLACE)
            .bind(referral.facility_id)
            .execute(&mut *tx)
            .await?;
        if held == 1 {
            reserved = true;
        } else {
            let total: i64 = sql::query_scalar(SELECT_CAPACITY)
                .bind(referral.facility_id)
                .fetch_one(&mut *tx)
                .await?;
            if total > 0 {
                return Err(HavenError::new(
                    ErrorCode::Conflict,
                    "no free place left at this facility",
                ));
            }
        }
    }
    if reserved && referral.status.releases_place(change.to) {
        sql::query(RELEASE_PLACE)
            .bind(referral.facility_id)
            .execute(&mut *tx)
            .await?;
        reserved = false;
    }
    // A new text is encrypted under the referral's key; an empty one keeps what is
    // stored. Once the person was erased the referral still moves, but keeps no new
    // text.
    let key = texts::referral_key(directory, tx, referral.id).await?;
    let seal = |column: TextColumn, text: &str| -> HavenResult<Option<Vec<u8>>> {
        match &key {
            Some(key) if !text.is_empty() => crypto::seal(key, column, referral.id, text).map(Some),
            _ => Ok(None),
        }
    };
    let status_reason = seal(TextColumn::StatusReason, &change.reason)?;
    let outcome = seal(TextColumn::Outcome, &change.outcome)?;
    let updated = sql::query(UPDATE_STATUS)
        .bind(referral.id)
        .bind(referral.version)
        .bind(change.to.as_str())
        .bind(status_reason)
        .bind(outcome)
        .bind(reserved)
        .bind(OffsetDateTime::now_utc())
        .execute(&mut *tx)
        .await?;
    if updated != 1 {
        return Err(HavenError::new(
            ErrorCode::PreconditionFailed,
            "the referral changed since you read it",
        ));
    }
    sealed_referral(tx, referral.id)
        .await?
        .ok_or_else(|| corrupt("referral"))
}

/// The referral an earlier request with the same key recorded, shown again: a read,
/// audited like one.
async fn replay(
    directory: &Directory,
    tx: &mut Tx,
    context: &AuditContext,
    record_id: &str,
) -> HavenResult<Referral> {
    let sealed = sealed_referral(tx, replayed_id(record_id)?)
        .await?
        .ok_or_else(|| corrupt("referral"))?;
    let receipt = audit_read(tx, context, sealed.referral.id).await?;
    sealed.open(&directory.crypto, &receipt)
}

/// The audit entry of reading the referral `id`, whose receipt opens its texts.
async fn audit_read(tx: &mut Tx, context: &AuditContext, id: Uuid) -> HavenResult<Receipt> {
    let entry = context.entry(READ_ACTION, "referral", id);
    AuditWrite::append_audit(tx, SERVICE, &entry)
        .await
        .map_err(db_error)
}

/// The event of a move.
fn event_type(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Requested => "referral.requested",
        ReferralStatus::Accepted => "referral.accepted",
        ReferralStatus::Declined => "referral.declined",
        ReferralStatus::InProgress => "referral.started",
        ReferralStatus::Completed => "referral.completed",
        ReferralStatus::Cancelled => "referral.cancelled",
        ReferralStatus::Revoked => "referral.revoked",
    }
}
