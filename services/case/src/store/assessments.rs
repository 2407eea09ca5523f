//! Assessments of a case.

use super::*;

/// Assessments of a case.
#[async_trait::async_trait]
pub trait Assessments {
    /// Records an assessment of a case inside `scope`. Audited. `None` if not in scope.
    #[allow(clippy::too_many_arguments)]
    async fn add_assessment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: AssessmentKind,
        scores: Vec<(NeedDomain, u8)>,
        assessed_at: OffsetDateTime,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Assessment>>>;
    /// The assessments of a case inside `scope`, oldest first. Audited as a read.
    async fn list_assessments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Assessment>>>;
}

#[async_trait::async_trait]
impl Assessments for Cases {
    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    #[allow(clippy::too_many_arguments)]
    async fn add_assessment(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
        kind: AssessmentKind,
        scores: Vec<(NeedDomain, u8)>,
        assessed_at: OffsetDateTime,
        once: Option<&CallerKey>,
    ) -> HavenResult<Option<Created<Assessment>>> {
        let mut tx = self.database.begin_write().await?;
        let id = Uuid::now_v7();
        let claimed = claim(&mut tx, once, &id.to_string()).await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        if let Claim::Replay(earlier) = claimed {
            let row: Option<AssessmentRow> = sql::query_as(SELECT_ASSESSMENT)
                .bind(case_id)
                .bind(replayed_id(&earlier)?)
                .fetch_optional(&mut tx)
                .await?;
            let assessment = row
                .map(Assessment::try_from)
                .transpose()?
                .ok_or_else(|| corrupt("assessment"))?;
            Self::record(&mut tx, context, "case.read", &case, None).await?;
            tx.commit().await?;
            return Ok(Some(Created::replay(assessment)));
        }
        open_case_required(&case)?;
        let by_domain: std::collections::BTreeMap<&str, u8> = scores
            .iter()
            .map(|(domain, score)| (domain.as_str(), *score))
            .collect();
        let json = serde_json::to_string(&by_domain).map_err(HavenError::internal)?;
        sql::query(
            "INSERT INTO assessments (id, case_id, kind, scores, assessed_at, assessed_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(case_id)
        .bind(kind.as_str())
        .bind(&json)
        .bind(assessed_at)
        .bind(&context.principal.subject)
        .execute(&mut tx)
        .await
        ?;
        // Scores are the outcome measure: reporting compares first and latest.
        let payload =
            serde_json::json!({ "assessment_id": id, "kind": kind.as_str(), "scores": by_domain });
        Self::record(
            &mut tx,
            context,
            "case.update",
            &case,
            Some(("case.assessed", payload)),
        )
        .await?;
        tx.commit().await?;
        self.signal.notify();
        let mut scores = scores;
        scores.sort_by_key(|(domain, _)| *domain);
        Ok(Some(Created::new(Assessment {
            id,
            case_id,
            kind,
            scores,
            assessed_at,
            assessed_by: context.principal.subject.clone(),
        })))
    }

    #[tracing::instrument(skip_all, fields(case_id = %case_id))]
    async fn list_assessments(
        &self,
        context: &AuditContext,
        scope: Scope,
        case_id: Uuid,
    ) -> HavenResult<Option<Vec<Assessment>>> {
        let mut tx = self.database.begin_write().await?;
        let Some(case) = self.load(&mut tx, context, scope, case_id).await? else {
            return Ok(None);
        };
        let rows: Vec<AssessmentRow> = sql::query_as(SELECT_ASSESSMENTS)
            .bind(case_id)
            .fetch_all(&mut tx)
            .await?;
        Self::record(&mut tx, context, "case.read", &case, None).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(Assessment::try_from)
            .collect::<HavenResult<Vec<_>>>()
            .map(Some)
    }
}
