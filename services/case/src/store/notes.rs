//! Case notes.

use super::*;

/// Case notes.
#[async_trait::async_trait]
pub trait Notes {
    /// Adds an encrypted note.
    async fn add_note(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibility: NoteVisibility,
        body: &str,
    ) -> HavenResult<Option<Note>>;
    /// The notes of the given visibilities, oldest first, decrypted.
    async fn list_notes(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibilities: &[NoteVisibility],
    ) -> HavenResult<Option<Vec<Note>>>;
}

#[async_trait::async_trait]
impl Notes for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn add_note(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibility: NoteVisibility,
        body: &str,
    ) -> HavenResult<Option<Note>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let key = self.writable_key(&mut tx, case_id).await?;
        let id = Uuid::now_v7();
        let sealed = key.seal("notes", "body", id.as_bytes(), body)?;
        let written_at = OffsetDateTime::now_utc();
        sql::query("INSERT INTO notes (id, case_id, visibility, body, written_by, written_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(case_id)
            .bind(visibility.as_str())
            .bind(sealed)
            .bind(&context.principal.subject)
            .bind(written_at)
            .execute(&mut tx)
            .await
            ?;
        // The event says a note exists, never what it says.
        let payload = serde_json::json!({ "note_id": id, "visibility": visibility.as_str() });
        Self::record(
            &mut tx,
            context,
            "case.note.write",
            &case,
            Some(("case.note_added", payload)),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        Ok(Some(Note {
            id,
            case_id,
            visibility,
            body: body.to_owned(),
            written_by: context.principal.subject.clone(),
            written_at,
        }))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_notes(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        visibilities: &[NoteVisibility],
    ) -> HavenResult<Option<Vec<Note>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<NoteRow> = sql::query_as(
            "SELECT id, case_id, visibility, body, written_by, written_at FROM notes WHERE case_id = $1 ORDER BY seq",
        )
        .bind(case_id)
        .fetch_all(&mut tx)
        .await
        ?;
        let receipt = Self::record(&mut tx, context, "case.note.read", &case, None).await?;
        let key = self.opened_key(&mut tx, &receipt, case_id).await?;
        tx.commit().await?;
        let mut notes = Vec::new();
        for row in rows {
            let visibility =
                NoteVisibility::parse(&row.visibility).ok_or_else(|| corrupt("note"))?;
            if !visibilities.contains(&visibility) {
                continue;
            }
            let body = match &key {
                Some(key) => key.open("notes", "body", row.id.as_bytes(), &row.body)?,
                // Erased with the person: the ciphertext stays, unreadable.
                None => String::new(),
            };
            notes.push(Note {
                id: row.id,
                case_id: row.case_id,
                visibility,
                body,
                written_by: row.written_by,
                written_at: row.written_at,
            });
        }
        Ok(Some(notes))
    }
}
