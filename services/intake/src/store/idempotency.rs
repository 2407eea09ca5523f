//! Idempotency keys of screening writes, kept per organisation with the screening they
//! are about: a retry gets the screening as the first request left it, and the same
//! key with another request is refused.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::AuditContext;
use haven_auth::Scope;
use haven_error::{ErrorCode, HavenError, HavenResult};
use haven_storage::sql::{self, DbResult, Tx};

use super::{IdempotencyKey, Reach, SCREENING_READ, Screenings, audit};
use crate::domain::Screening;

const SELECT_KEY: &str = "SELECT request_hash, screening_id FROM screening_idempotency WHERE organization_id = $1 AND key = $2";
/// Records the key of a create; a concurrent retry that recorded it first is a unique
/// violation.
const INSERT_CREATED_KEY: &str = "INSERT INTO screening_idempotency (organization_id, key, request_hash, screening_id, created_at) \
     VALUES ($1, $2, $3, $4, $5)";
/// Records the key of a write to an existing screening, unless it is already there.
const INSERT_KEY: &str = "INSERT INTO screening_idempotency (organization_id, key, request_hash, screening_id, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// 422: the key came with another request.
fn different_request() -> HavenError {
    HavenError::new(
        ErrorCode::Unprocessable,
        "this Idempotency-Key was used with a different request",
    )
}

impl Screenings {
    /// With an idempotency key: `true` when an earlier request with this key already
    /// did the work on this screening (nothing more to do), an error if the key was
    /// used for another request; otherwise records the key in this transaction, so it
    /// commits with the work.
    pub(super) async fn already_done(
        tx: &mut Tx,
        organization_id: Uuid,
        screening_id: Uuid,
        once: Option<&IdempotencyKey>,
    ) -> HavenResult<bool> {
        let Some(once) = once else { return Ok(false) };
        let earlier = || {
            sql::query_as::<(Vec<u8>, Uuid)>(SELECT_KEY)
                .bind(organization_id)
                .bind(&once.key)
        };
        let same = |(request_hash, earlier): (Vec<u8>, Uuid)| {
            if request_hash != once.request_hash || earlier != screening_id {
                return Err(different_request());
            }
            Ok(true)
        };
        if let Some(row) = earlier().fetch_optional(&mut *tx).await? {
            return same(row);
        }
        // A concurrent retry with the same key may insert it first: this insert
        // then waits for it and does nothing, and its key is read back (read
        // committed: the statement sees what committed meanwhile).
        let inserted = sql::query(INSERT_KEY)
            .bind(organization_id)
            .bind(&once.key)
            .bind(&once.request_hash)
            .bind(screening_id)
            .bind(OffsetDateTime::now_utc())
            .execute(&mut *tx)
            .await?;
        if inserted == 1 {
            return Ok(false);
        }
        let row = earlier().fetch_optional(&mut *tx).await?;
        let row = row.ok_or_else(|| {
            HavenError::internal(std::io::Error::other("an idempotency key vanished"))
        })?;
        same(row)
    }

    /// Records the key of the screening `screening_id` this transaction creates.
    pub(super) async fn record_created_key(
        tx: &mut Tx,
        organization_id: Uuid,
        once: &IdempotencyKey,
        screening_id: Uuid,
        now: OffsetDateTime,
    ) -> DbResult<()> {
        sql::query(INSERT_CREATED_KEY)
            .bind(organization_id)
            .bind(&once.key)
            .bind(&once.request_hash)
            .bind(screening_id)
            .bind(now)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Answers a retried write that already happened: the screening as it stands,
    /// audited as a read in `tx`.
    pub(super) async fn replayed(
        &self,
        tx: &mut Tx,
        context: &AuditContext,
        id: Uuid,
    ) -> HavenResult<Screening> {
        let receipt = audit(tx, context.entry(SCREENING_READ, "screening", id)).await?;
        // Loaded again: a concurrent retry may have done the work since this
        // transaction first read the screening.
        self.reload(tx, id, &receipt).await
    }

    /// The screening an idempotency key created, if any; a different request under
    /// the same key is refused.
    pub(super) async fn replay_screening(
        &self,
        context: &AuditContext,
        organization_id: Uuid,
        once: &IdempotencyKey,
    ) -> HavenResult<Option<Screening>> {
        let row: Option<(Vec<u8>, Uuid)> = sql::query_as(SELECT_KEY)
            .bind(organization_id)
            .bind(&once.key)
            .fetch_optional(&self.database)
            .await?;
        let Some((request_hash, screening_id)) = row else {
            return Ok(None);
        };
        if request_hash != once.request_hash {
            return Err(different_request());
        }
        // The replay shows the screening again: a read, audited like one.
        let mut tx = self.database.begin_write().await?;
        let scope = Reach::from(Scope::Organization(organization_id));
        let Some(loaded) = Self::load(&mut tx, scope, screening_id).await? else {
            return Ok(None);
        };
        let receipt = audit(
            &mut tx,
            context.entry(SCREENING_READ, "screening", screening_id),
        )
        .await?;
        let screening = loaded.open(&self.crypto, &receipt)?;
        tx.commit().await?;
        Ok(Some(screening))
    }
}
