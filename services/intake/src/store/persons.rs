//! Screened persons: recorded encrypted with their blind indexes, read and erased
//! (each audited), matched against each other as duplicates, and the trail of who
//! accessed them.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_audit::{AuditContext, AuditEntry};
use haven_crypto::BlindIndexKind;
use haven_error::{HavenError, HavenResult};
use haven_events::{NewEvent, OutboxWrite};
use haven_storage::sql::{self, On, Tx};
use haven_storage::{ForgetDeleted, db_error};

use super::rows::PersonRow;
use super::{PersonMatch, Reach, Screenings, audit, publish};
use crate::domain::Screening;
use crate::persons::{Gender, Person, PersonDetails};
use crate::search_limit::SearchWindow;

const PERSON_COLUMNS: &str = "SELECT id, code, organization_id, wrapped_key, given_name, family_name, patronymic, \
    birth_date, phone, address, identity_document_number, birth_year, gender, citizenships, languages, \
    created_at, erased_at FROM persons WHERE id = $1 AND ($2 IS NULL OR organization_id = $2) AND ($3 OR NOT sealed)";
const INSERT_PERSON: &str = "INSERT INTO persons (id, code, organization_id, wrapped_key, given_name, family_name, \
    patronymic, birth_date, phone, address, identity_document_number, birth_year, gender, citizenships, \
    languages, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1)";
const NEXT_PERSON_NUMBER: &str = "INSERT INTO person_code_counters (year, last) VALUES ($1, 1) \
    ON CONFLICT (year) DO UPDATE SET last = person_code_counters.last + 1 RETURNING last";
const INSERT_INDEX: &str = "INSERT INTO person_blind_index (person_id, kind, value) VALUES ($1, $2, $3) \
    ON CONFLICT DO NOTHING";
const ERASE_PERSON: &str = "UPDATE persons SET wrapped_key = NULL, erased_at = $2, erasure_reason = NULL, \
    erasure_key = $3, erasure_reason_ciphertext = $4, \
    version = version + 1 WHERE id = $1 AND erased_at IS NULL";
const SHRED_SCREENING_KEYS: &str = "UPDATE screenings SET wrapped_key = NULL WHERE person_id = $1";
const DELETE_INDEXES: &str = "DELETE FROM person_blind_index WHERE person_id = $1";
const BLANK_PLAIN_DECISION_TEXTS: &str = "UPDATE decisions SET reasons = '', legal_basis = '' WHERE (reasons <> '' OR legal_basis <> '') \
     AND screening_id IN (SELECT id FROM screenings WHERE person_id = $1)";
const SCREENINGS_OF_PERSON: &str = "SELECT id FROM screenings WHERE person_id = $1";
/// One more search in the user's window, or the first of a new window once the last
/// began `$3` milliseconds or more before `$2`. Both backends evaluate every `SET`
/// expression on the row as it was.
const COUNT_SEARCH: &str = "INSERT INTO search_windows (subject, started_ms, searches) VALUES ($1, $2, 1) \
    ON CONFLICT (subject) DO UPDATE SET \
    searches = CASE WHEN search_windows.started_ms <= $2 - $3 THEN 1 ELSE search_windows.searches + 1 END, \
    started_ms = CASE WHEN search_windows.started_ms <= $2 - $3 THEN $2 ELSE search_windows.started_ms END \
    RETURNING started_ms, searches";
const MATCHING_PERSONS: &str = "SELECT DISTINCT other.person_id, p.code, other.kind, p.organization_id FROM person_blind_index mine \
     JOIN person_blind_index other ON other.value = mine.value AND other.kind = mine.kind \
     JOIN persons p ON p.id = other.person_id \
     WHERE mine.person_id = $1 AND other.person_id <> $1 AND ($2 OR NOT p.sealed)";
const SCREENINGS_OF_MATCH: &str = "SELECT id FROM screenings WHERE person_id = $1 AND ($2 IS NULL OR organization_id = $2) \
     AND ($3 OR NOT sealed) ORDER BY seq";
const LINK_PERSONS: &str = "INSERT INTO person_links (person_id, linked_person_id, screening_id, confirmed_by, confirmed_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
const MARK_RE_TRAFFICKED: &str = "UPDATE screenings SET re_trafficked = TRUE, version = version + 1 WHERE id = $1 AND re_trafficked = FALSE";

impl Screenings {
    /// Records the screened person's details, encrypted under a key of their own, with
    /// their blind indexes and a new pseudonymous code; audited as `person.create`.
    pub(super) async fn insert_person(
        &self,
        tx: &mut Tx,
        context: &AuditContext,
        organization_id: Uuid,
        details: &PersonDetails,
        now: OffsetDateTime,
    ) -> HavenResult<Uuid> {
        let person_id = Uuid::now_v7();
        let (key, wrapped) = self.crypto.generate(person_id)?;
        let columns = self.crypto.encrypt(&key, person_id, details)?;
        let number: i64 = sql::query_scalar(NEXT_PERSON_NUMBER)
            .bind(now.year())
            .fetch_one(&mut *tx)
            .await?;
        let code = format!("{}-{}-{number:06}", self.code_prefix, now.year());
        let [
            given_name,
            family_name,
            patronymic,
            birth_date,
            phone,
            address,
            document,
        ] = columns;
        sql::query(INSERT_PERSON)
            .bind(person_id)
            .bind(&code)
            .bind(organization_id)
            .bind(wrapped)
            .bind(given_name)
            .bind(family_name)
            .bind(patronymic)
            .bind(birth_date)
            .bind(phone)
            .bind(address)
            .bind(document)
            .bind(details.birth_year)
            .bind(details.gender.map(Gender::as_str).unwrap_or("unknown"))
            .bind(details.citizenships.join(","))
            .bind(details.languages.join(","))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        for value in self.crypto.index_values(details) {
            sql::query(INSERT_INDEX)
                .bind(person_id)
                .bind(i32::from(value.kind().code()))
                .bind(value.as_bytes().to_vec())
                .execute(&mut *tx)
                .await?;
        }
        audit(tx, context.entry("person.create", "person", person_id)).await?;
        Ok(person_id)
    }

    /// The person `id` inside `scope`, still encrypted.
    async fn load_person<'e>(
        on: impl Into<On<'e>>,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<PersonRow>> {
        Ok(sql::query_as(PERSON_COLUMNS)
            .bind(id)
            .bind(scope.organization())
            .bind(scope.sees_sealed())
            .fetch_optional(on)
            .await?)
    }

    #[tracing::instrument(skip_all, fields(person_id = %id))]
    pub(super) async fn get_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
    ) -> HavenResult<Option<Person>> {
        let mut tx = self.database.begin_write().await?;
        let Some(row) = Self::load_person(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        let receipt = audit(&mut tx, context.entry("person.read", "person", id)).await?;
        let person = row.decrypt(&self.crypto, &receipt)?;
        tx.commit().await?;
        Ok(Some(person))
    }

    #[tracing::instrument(skip_all, fields(person_id = %id))]
    pub(super) async fn erase_person(
        &self,
        context: &AuditContext,
        scope: Reach,
        id: Uuid,
        reason: &str,
    ) -> HavenResult<Option<Person>> {
        let mut tx = self.database.begin_write().await?;
        let Some(row) = Self::load_person(&mut tx, scope, id).await? else {
            return Ok(None);
        };
        let organization_id = row.organization_id;
        // The reason is typed text and may name people: it is kept only encrypted,
        // under a key of its own that the erasure does not destroy.
        let (erasure_key, wrapped_erasure_key) = self.crypto.generate(id)?;
        let sealed_reason = erasure_key.seal("persons", "erasure_reason", id.as_bytes(), reason)?;
        let erased = sql::query(ERASE_PERSON)
            .bind(id)
            .bind(OffsetDateTime::now_utc())
            .bind(wrapped_erasure_key)
            .bind(sealed_reason)
            .execute(&mut tx)
            .await?;
        // Narratives recorded on the person's screenings go with them.
        sql::query(SHRED_SCREENING_KEYS)
            .bind(id)
            .execute(&mut tx)
            .await?;
        sql::query(DELETE_INDEXES).bind(id).execute(&mut tx).await?;
        // Reasons and legal bases recorded in the clear before they were encrypted go
        // as well.
        sql::query(BLANK_PLAIN_DECISION_TEXTS)
            .bind(id)
            .execute(&mut tx)
            .await?;
        // What the feed said about the person and their screenings goes too; the
        // sequences stay so followers' positions hold.
        let screening_ids: Vec<Uuid> = sql::query_scalar(SCREENINGS_OF_PERSON)
            .bind(id)
            .fetch_all(&mut tx)
            .await?;
        let aggregates: Vec<Uuid> = std::iter::once(id).chain(screening_ids).collect();
        tx.redact_events(&aggregates).await.map_err(db_error)?;
        if erased == 1 {
            let event = NewEvent {
                event_type: "person.erased",
                aggregate_id: id,
                organization_id,
                payload: serde_json::json!({ "person_id": id }),
            };
            publish(&mut tx, event).await?;
        }
        let receipt = audit(&mut tx, context.entry("person.erase", "person", id)).await?;
        let person = Self::load_person(&mut tx, Reach::INTERNAL, id)
            .await?
            .ok_or_else(|| HavenError::not_found("person"))?
            .decrypt(&self.crypto, &receipt)?;
        tx.commit().await?;
        self.signal.notify();
        tracing::info!(person_id = %id, "person erased");
        // No copy of the destroyed keys may stay in the database files.
        self.database.forget_deleted().await?;
        Ok(Some(person))
    }

    pub(super) async fn count_search(
        &self,
        subject: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> HavenResult<SearchWindow> {
        let (started_ms, searches): (i64, i64) = sql::query_as(COUNT_SEARCH)
            .bind(subject)
            .bind(now_ms)
            .bind(window_ms)
            .fetch_one(&self.database)
            .await?;
        Ok(SearchWindow {
            started_ms,
            searches,
        })
    }

    #[tracing::instrument(skip_all, fields(screening_id = %screening_id))]
    pub(super) async fn find_matches(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
    ) -> HavenResult<Option<Vec<PersonMatch>>> {
        let mut tx = self.database.begin_write().await?;
        // The search compares blind indexes; none of the screening's texts is opened.
        let Some(screening) = Self::load(&mut tx, scope, screening_id).await? else {
            return Ok(None);
        };
        let person_id = screening.screening.person_to_compare()?;
        // Matches in every organisation: a re-trafficked person often reappears
        // elsewhere. Outside the caller's scope only the holder is disclosed.
        let rows: Vec<(Uuid, String, i32, Uuid)> = sql::query_as(MATCHING_PERSONS)
            .bind(person_id)
            .bind(scope.sees_sealed())
            .fetch_all(&mut tx)
            .await?;
        let mut matches: Vec<PersonMatch> = Vec::new();
        for (other, code, kind, holder) in rows {
            let restricted = !scope.contains(holder);
            let kind = u8::try_from(kind)
                .ok()
                .and_then(BlindIndexKind::from_code)
                .unwrap_or(BlindIndexKind::NamePart);
            if let Some(existing) = matches.iter_mut().find(|found| found.person_id == other) {
                if kind == BlindIndexKind::FullName {
                    existing.kind = kind;
                }
                continue;
            }
            let screening_ids: Vec<Uuid> = if restricted {
                Vec::new()
            } else {
                sql::query_scalar(SCREENINGS_OF_MATCH)
                    .bind(other)
                    .bind(scope.organization())
                    .bind(scope.sees_sealed())
                    .fetch_all(&mut tx)
                    .await?
            };
            matches.push(PersonMatch {
                person_id: other,
                person_code: if restricted { String::new() } else { code },
                kind,
                screening_ids,
                organization_id: holder,
                restricted,
            });
        }
        audit(
            &mut tx,
            context.entry("person.duplicate_search", "person", person_id),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(matches))
    }

    #[tracing::instrument(skip_all, fields(screening_id = %screening_id, other = %other))]
    pub(super) async fn confirm_match(
        &self,
        context: &AuditContext,
        scope: Reach,
        screening_id: Uuid,
        other: Uuid,
    ) -> HavenResult<Option<Screening>> {
        let mut tx = self.database.begin_write().await?;
        let Some(screening) = Self::load(&mut tx, scope, screening_id).await? else {
            return Ok(None);
        };
        let screening = screening.without_texts();
        let person_id = screening.person_to_link(other)?;
        if Self::load_person(&mut tx, scope, other).await?.is_none() {
            return Ok(None);
        }
        sql::query(LINK_PERSONS)
            .bind(person_id)
            .bind(other)
            .bind(screening_id)
            .bind(&context.principal.subject)
            .bind(OffsetDateTime::now_utc())
            .execute(&mut tx)
            .await?;
        let marked = sql::query(MARK_RE_TRAFFICKED)
            .bind(screening_id)
            .execute(&mut tx)
            .await?;
        if marked == 1 {
            let event = NewEvent {
                event_type: "screening.re_trafficking_confirmed",
                aggregate_id: screening_id,
                organization_id: screening.organization_id,
                payload: serde_json::json!({ "person_id": person_id, "linked_person_id": other }),
            };
            publish(&mut tx, event).await?;
        }
        audit(&mut tx, context.entry("person.link", "person", person_id)).await?;
        let receipt = audit(
            &mut tx,
            context.entry("screening.match", "screening", screening_id),
        )
        .await?;
        let updated = self.reload(&mut tx, screening_id, &receipt).await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(updated))
    }

    #[tracing::instrument(skip_all, fields(person_id = %id))]
    pub(super) async fn person_access(
        &self,
        scope: Reach,
        id: Uuid,
        after: i64,
        limit: u32,
    ) -> HavenResult<Option<Vec<AuditEntry>>> {
        if Self::load_person(&self.database, scope, id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        haven_audit::entries_for_record(&self.database, "person", id, after, limit)
            .await
            .map(Some)
    }
}
