//! Statutory clocks: listed by how soon they fall due, and marked met. Decisions start
//! them (see the histories).

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::HavenResult;
use haven_events::NewEvent;
use haven_storage::sql;

use super::{ClockFilter, Reach, Screenings, publish};
use crate::clocks::{Clock, ClockState};

pub(super) const INSERT_CLOCK: &str = "INSERT INTO clocks (id, screening_id, organization_id, name, description, started_at, due_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (screening_id, name) DO NOTHING";
/// A clock whose screening is sealed.
const CLOCK_SEALED: &str = "EXISTS (SELECT 1 FROM screenings sealed_screening \
    WHERE sealed_screening.id = clocks.screening_id AND sealed_screening.sealed)";
const CLOCK_COLUMNS: &str = "seq, id, screening_id, organization_id, name, description, started_at, due_at, completed_at, completed_by";
const COMPLETE_CLOCK: &str =
    "UPDATE clocks SET completed_at = $2, completed_by = $3 WHERE id = $1 AND completed_at IS NULL";

#[derive(Debug, sqlx::FromRow)]
struct ClockRow {
    seq: i64,
    id: Uuid,
    screening_id: Uuid,
    organization_id: Uuid,
    name: String,
    description: String,
    started_at: OffsetDateTime,
    due_at: OffsetDateTime,
    completed_at: Option<OffsetDateTime>,
    completed_by: Option<String>,
}

impl From<ClockRow> for Clock {
    fn from(row: ClockRow) -> Self {
        Clock {
            id: row.id,
            screening_id: row.screening_id,
            organization_id: row.organization_id,
            name: row.name,
            description: row.description,
            started_at: row.started_at,
            due_at: row.due_at,
            completed_at: row.completed_at,
            completed_by: row.completed_by,
            position: row.seq,
        }
    }
}

impl Screenings {
    #[tracing::instrument(skip_all)]
    pub(super) async fn list_clocks(
        &self,
        scope: Reach,
        filter: &ClockFilter,
        after: Option<(OffsetDateTime, i64)>,
        limit: u32,
    ) -> HavenResult<Vec<Clock>> {
        let state = match filter.state {
            None => "completed_at IS NULL",
            Some(ClockState::Overdue) => "completed_at IS NULL AND due_at <= $4",
            Some(ClockState::DueSoon) => "completed_at IS NULL AND due_at > $4 AND due_at <= $5",
            Some(ClockState::Open) => "completed_at IS NULL AND due_at > $5",
            Some(ClockState::Completed) => "completed_at IS NOT NULL",
        };
        let (after_due, after_seq) = after.unwrap_or((OffsetDateTime::UNIX_EPOCH, 0));
        let select = format!(
            "SELECT {CLOCK_COLUMNS} FROM clocks WHERE ($1 IS NULL OR organization_id = $1) AND {state} \
             AND (due_at > $2 OR (due_at = $2 AND seq > $3)) AND ($7 OR NOT {CLOCK_SEALED}) ORDER BY due_at, seq LIMIT $6"
        );
        let rows: Vec<ClockRow> = sql::query_as(sqlx::AssertSqlSafe(select))
            .bind(scope.organization())
            .bind(after_due)
            .bind(after_seq)
            .bind(filter.now)
            .bind(filter.now + filter.window)
            .bind(i64::from(limit))
            .bind(scope.sees_sealed())
            .fetch_all(&self.database)
            .await?;
        Ok(rows.into_iter().map(Clock::from).collect())
    }

    #[tracing::instrument(skip_all, fields(clock_id = %id))]
    pub(super) async fn complete_clock(
        &self,
        scope: Reach,
        id: Uuid,
        completed_by: &str,
    ) -> HavenResult<Option<Clock>> {
        let mut tx = self.database.begin_write().await?;
        let select = format!(
            "SELECT {CLOCK_COLUMNS} FROM clocks WHERE id = $1 AND ($2 IS NULL OR organization_id = $2) \
             AND ($3 OR NOT {CLOCK_SEALED})"
        );
        let row: Option<ClockRow> = sql::query_as(sqlx::AssertSqlSafe(select.clone()))
            .bind(id)
            .bind(scope.organization())
            .bind(scope.sees_sealed())
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let completed = sql::query(COMPLETE_CLOCK)
            .bind(id)
            .bind(OffsetDateTime::now_utc())
            .bind(completed_by)
            .execute(&mut tx)
            .await?;
        if completed == 1 {
            let event = NewEvent {
                event_type: "clock.completed",
                aggregate_id: id,
                organization_id: row.organization_id,
                payload: serde_json::json!({ "screening_id": row.screening_id, "name": row.name }),
            };
            publish(&mut tx, event).await?;
        }
        let row: ClockRow = sql::query_as(sqlx::AssertSqlSafe(select))
            .bind(id)
            .bind(scope.organization())
            .bind(scope.sees_sealed())
            .fetch_one(&mut tx)
            .await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Clock::from(row)))
    }
}
