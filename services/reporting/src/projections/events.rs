//! What each event of the intake, case and referral feeds writes in the projections:
//! the statements, read from the event's payload, that [`super::apply`] runs.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{HavenError, HavenResult};
use haven_proto::common::v1::Event;
use haven_storage::sql::{self, Query};

/// A value of a multi-valued category of a screening.
const INSERT_LABEL: &str = "INSERT INTO screening_labels (screening_id, kind, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const INSERT_SCREENING: &str = "INSERT INTO screenings (id, organization_id, referral_source, stage, created_at, gender, age_band, is_minor, \
    citizenship, exploitation_types, region, created_epoch) \
    VALUES ($1, $2, $3, 'screened', $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
const SET_EXPLOITATION_TYPES: &str = "UPDATE screenings SET exploitation_types = $2 WHERE id = $1";
const DELETE_LABELS: &str = "DELETE FROM screening_labels WHERE screening_id = $1 AND kind = $2";
const SET_STAGE: &str = "UPDATE screenings SET stage = $2 WHERE id = $1";
const SET_IDENTIFIED: &str =
    "UPDATE screenings SET identified_epoch = COALESCE(identified_epoch, $2) WHERE id = $1";
const SET_REPORTING_CONSENT: &str = "UPDATE screenings SET reporting_consent = $2 WHERE id = $1";
const SET_CASE: &str = "UPDATE screenings SET case_id = $2 WHERE id = $1";
const SET_RE_TRAFFICKED: &str = "UPDATE screenings SET re_trafficked = TRUE WHERE id = $1";
const INSERT_CASE: &str = "INSERT INTO cases (id, organization_id, status, opened_at, screening_id, stage) VALUES ($1, $2, $3, $4, $5, $6) \
    ON CONFLICT (id) DO NOTHING";
const SET_CASE_STAGE: &str =
    "UPDATE cases SET stage = $2, status = COALESCE($3, status) WHERE id = $1";
const CLOSE_CASE: &str =
    "UPDATE cases SET stage = 'closed', status = $2, closure_reason = $3 WHERE id = $1";
const REOPEN_CASE: &str =
    "UPDATE cases SET stage = $2, status = 'active', closure_reason = NULL WHERE id = $1";
const SET_CASE_ORGANIZATION: &str = "UPDATE cases SET organization_id = $2 WHERE id = $1";
const INSERT_SERVICE: &str = "INSERT INTO case_services (id, case_id, service_type, provider_id, status, recorded_at, provider) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
const SET_FIRST_SERVICE: &str =
    "UPDATE cases SET first_service_epoch = COALESCE(first_service_epoch, $2) WHERE id = $1";
const SET_SERVICE_STATUS: &str = "UPDATE case_services SET status = $2 WHERE id = $1";
const INSERT_PAYMENT: &str = "INSERT INTO payments (id, case_id, currency, amount_minor, recorded_at) VALUES ($1, $2, $3, $4, $5) \
    ON CONFLICT (id) DO NOTHING";
/// The first and latest score of a case in one domain.
const ADD_SCORE: &str = "INSERT INTO assessment_scores (case_id, domain, first_score, latest_score, assessments) VALUES ($1, $2, $3, $3, 1) \
    ON CONFLICT (case_id, domain) DO UPDATE SET latest_score = $3, assessments = assessment_scores.assessments + 1";
const INSERT_FOLLOW_UP: &str =
    "INSERT INTO follow_ups (id, case_id, due_on) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";
const FOLLOW_UP_DONE: &str = "UPDATE follow_ups SET done = TRUE WHERE id = $1";
const INSERT_ORGANIZATION: &str =
    "INSERT INTO organizations (id, organization_type) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";
const INSERT_REFERRAL: &str = "INSERT INTO referrals (id, case_id, from_organization_id, to_organization_id, service_type, status, requested_at, \
    requested_epoch, accept_by_epoch, outcome_due_on, facility_id) \
    VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING";
const SET_REFERRAL_STATUS: &str = "UPDATE referrals SET status = $2 WHERE id = $1";
/// A place held in the facility of an accepted referral, if it has one.
const HOLD_PLACE: &str = "INSERT INTO occupancy_changes (referral_id, facility_id, delta, changed_day) \
    SELECT id, facility_id, 1, $2 FROM referrals WHERE id = $1 AND facility_id IS NOT NULL \
    ON CONFLICT DO NOTHING";
/// The place a referral held given back, if it held one.
const RELEASE_PLACE: &str = "INSERT INTO occupancy_changes (referral_id, facility_id, delta, changed_day) \
    SELECT referral_id, facility_id, -1, $2 FROM occupancy_changes WHERE referral_id = $1 AND delta = 1 \
    ON CONFLICT DO NOTHING";
const SET_ACCEPTED: &str = "UPDATE referrals SET accepted_at = COALESCE(accepted_at, $2), accepted_epoch = COALESCE(accepted_epoch, $3) \
    WHERE id = $1";

/// CTDC's broad age bands, from the age at screening.
pub fn age_band(age: i32) -> &'static str {
    match age {
        i32::MIN..=8 => "0--8",
        9..=17 => "9--17",
        18..=20 => "18--20",
        21..=23 => "21--23",
        24..=26 => "24--26",
        27..=29 => "27--29",
        30..=38 => "30--38",
        39..=47 => "39--47",
        _ => "48+",
    }
}

fn text(payload: &serde_json::Value, name: &str) -> Option<String> {
    payload[name].as_str().map(str::to_owned)
}

pub(super) fn id(payload: &serde_json::Value, name: &str) -> Option<Uuid> {
    payload[name]
        .as_str()
        .and_then(|value| Uuid::parse_str(value).ok())
}

fn list(payload: &serde_json::Value, name: &str) -> Option<String> {
    payload[name].as_array().map(|values| {
        let mut values: Vec<&str> = values
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        values.sort_unstable();
        values.join(",")
    })
}

fn values(payload: &serde_json::Value, name: &str) -> Vec<String> {
    payload[name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One row per value of a multi-valued category of a screening.
fn labels(screening: Uuid, kind: &'static str, values: Vec<String>) -> Vec<Query> {
    values
        .into_iter()
        .map(|value| {
            sql::query(INSERT_LABEL)
                .bind(screening)
                .bind(kind)
                .bind(value)
        })
        .collect()
}

fn time_of(payload: &serde_json::Value, name: &str) -> Option<OffsetDateTime> {
    payload[name]
        .as_i64()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
}

/// What one event changes in the projections. Unknown events change nothing; an
/// event missing a field it should carry is an error (the feed retries, and the log
/// says which).
pub(super) fn statements(
    event: &Event,
    aggregate: Uuid,
    organization: Uuid,
    at: OffsetDateTime,
) -> HavenResult<Vec<Query>> {
    let payload: serde_json::Value =
        serde_json::from_str(&event.payload_json).map_err(HavenError::internal)?;
    // Erasure emptied this event: it says nothing any more, and counts nothing.
    if haven_events::is_redacted(&payload) {
        return Ok(Vec::new());
    }
    let missing = |field: &str| {
        HavenError::internal(std::io::Error::other(format!(
            "{} without {field}",
            event.event_type
        )))
    };
    Ok(match (event.source.as_str(), event.event_type.as_str()) {
        ("intake", "screening.created") => {
            let screened_at = time_of(&payload, "screened_at").unwrap_or(at);
            let age = payload["birth_year"]
                .as_i64()
                .map(|year| i64::from(screened_at.year()) - year);
            let mut writes = vec![
                sql::query(INSERT_SCREENING)
                    .bind(aggregate)
                    .bind(organization)
                    .bind(
                        text(&payload, "referral_source")
                            .ok_or_else(|| missing("referral_source"))?,
                    )
                    .bind(screened_at)
                    .bind(text(&payload, "gender"))
                    .bind(
                        age.and_then(|age| i32::try_from(age).ok())
                            .map(|age| age_band(age).to_owned()),
                    )
                    .bind(payload["is_minor"].as_bool().unwrap_or(false))
                    .bind(
                        payload["citizenships"]
                            .as_array()
                            .and_then(|all| all.first())
                            .and_then(|first| first.as_str())
                            .map(str::to_uppercase),
                    )
                    .bind(list(&payload, "exploitation_types").unwrap_or_default())
                    .bind(text(&payload, "settlement").unwrap_or_default())
                    .bind(screened_at.unix_timestamp()),
            ];
            writes.extend(labels(
                aggregate,
                "exploitation",
                values(&payload, "exploitation_types"),
            ));
            writes.extend(labels(
                aggregate,
                "means",
                values(&payload, "means_of_control"),
            ));
            writes
        }
        ("intake", "screening.updated") => {
            let mut writes = Vec::new();
            for (field, kind) in [
                ("exploitation_types", "exploitation"),
                ("means_of_control", "means"),
            ] {
                let Some(joined) = list(&payload, field) else {
                    continue;
                };
                if kind == "exploitation" {
                    // The export reads the types as one column.
                    writes.push(
                        sql::query(SET_EXPLOITATION_TYPES)
                            .bind(aggregate)
                            .bind(joined),
                    );
                }
                writes.push(sql::query(DELETE_LABELS).bind(aggregate).bind(kind));
                writes.extend(labels(aggregate, kind, values(&payload, field)));
            }
            writes
        }
        ("intake", "screening.decision_recorded") => {
            let stage = text(&payload, "stage").ok_or_else(|| missing("stage"))?;
            let decided_at = time_of(&payload, "decided_at").unwrap_or(at);
            let mut writes = vec![sql::query(SET_STAGE).bind(aggregate).bind(stage.clone())];
            if stage == "identified" {
                writes.push(
                    sql::query(SET_IDENTIFIED)
                        .bind(aggregate)
                        .bind(decided_at.unix_timestamp()),
                );
            }
            writes
        }
        ("intake", "screening.consent_recorded") if payload["purpose"] == "reporting" => vec![
            sql::query(SET_REPORTING_CONSENT)
                .bind(aggregate)
                .bind(payload["given"].as_bool().unwrap_or(false)),
        ],
        ("intake", "screening.case_opened") => vec![
            sql::query(SET_CASE)
                .bind(aggregate)
                .bind(id(&payload, "case_id")),
        ],
        ("intake", "screening.re_trafficking_confirmed") => {
            vec![sql::query(SET_RE_TRAFFICKED).bind(aggregate)]
        }
        ("case", "case.opened") => vec![
            sql::query(INSERT_CASE)
                .bind(aggregate)
                .bind(organization)
                .bind(text(&payload, "status").ok_or_else(|| missing("status"))?)
                .bind(at)
                .bind(id(&payload, "screening_id"))
                .bind(text(&payload, "stage").unwrap_or_else(|| "new".to_owned())),
        ],
        ("case", "case.stage_changed") => vec![
            sql::query(SET_CASE_STAGE)
                .bind(aggregate)
                .bind(text(&payload, "to").ok_or_else(|| missing("to"))?)
                .bind(text(&payload, "status")),
        ],
        ("case", "case.closed") => vec![
            sql::query(CLOSE_CASE)
                .bind(aggregate)
                .bind(text(&payload, "status").ok_or_else(|| missing("status"))?)
                .bind(text(&payload, "reason")),
        ],
        ("case", "case.reopened") => vec![
            sql::query(REOPEN_CASE)
                .bind(aggregate)
                .bind(text(&payload, "stage").unwrap_or_else(|| "assessment".to_owned())),
        ],
        ("case", "case.transferred") => vec![
            sql::query(SET_CASE_ORGANIZATION)
                .bind(aggregate)
                .bind(id(&payload, "to").ok_or_else(|| missing("to"))?),
        ],
        ("case", "case.service_added") => {
            let service = id(&payload, "service_id").ok_or_else(|| missing("service_id"))?;
            let provider = id(&payload, "provider_organization_id")
                .ok_or_else(|| missing("provider_organization_id"))?;
            vec![
                sql::query(INSERT_SERVICE)
                    .bind(service)
                    .bind(aggregate)
                    .bind(text(&payload, "type").ok_or_else(|| missing("type"))?)
                    .bind(provider)
                    .bind(text(&payload, "status").unwrap_or_else(|| "planned".to_owned()))
                    .bind(at)
                    .bind(provider.to_string()),
                sql::query(SET_FIRST_SERVICE)
                    .bind(aggregate)
                    .bind(at.unix_timestamp()),
            ]
        }
        ("case", "case.service_updated") => vec![
            sql::query(SET_SERVICE_STATUS)
                .bind(id(&payload, "service_id").ok_or_else(|| missing("service_id"))?)
                .bind(text(&payload, "to").ok_or_else(|| missing("to"))?),
        ],
        ("case", "case.payment_recorded") => {
            let amount = text(&payload, "amount").ok_or_else(|| missing("amount"))?;
            let minor = parse_amount(&amount).ok_or_else(|| missing("a readable amount"))?;
            vec![
                sql::query(INSERT_PAYMENT)
                    .bind(id(&payload, "payment_id").ok_or_else(|| missing("payment_id"))?)
                    .bind(aggregate)
                    .bind(text(&payload, "currency").ok_or_else(|| missing("currency"))?)
                    .bind(minor)
                    .bind(at),
            ]
        }
        ("case", "case.assessed") => payload["scores"]
            .as_object()
            .ok_or_else(|| missing("scores"))?
            .iter()
            .filter_map(|(domain, score)| score.as_i64().map(|score| (domain.clone(), score)))
            .map(|(domain, score)| {
                sql::query(ADD_SCORE)
                    .bind(aggregate)
                    .bind(domain)
                    .bind(score)
            })
            .collect(),
        ("case", "case.follow_up_scheduled") => vec![
            sql::query(INSERT_FOLLOW_UP)
                .bind(id(&payload, "follow_up_id").ok_or_else(|| missing("follow_up_id"))?)
                .bind(aggregate)
                .bind(text(&payload, "due_on").ok_or_else(|| missing("due_on"))?),
        ],
        ("case", "case.follow_up_done") => vec![
            sql::query(FOLLOW_UP_DONE)
                .bind(id(&payload, "follow_up_id").ok_or_else(|| missing("follow_up_id"))?),
        ],
        ("referral", "organization.created") => {
            vec![sql::query(INSERT_ORGANIZATION).bind(aggregate).bind(
                text(&payload, "organization_type").ok_or_else(|| missing("organization_type"))?,
            )]
        }
        ("referral", "referral.requested") => vec![
            sql::query(INSERT_REFERRAL)
                .bind(aggregate)
                .bind(id(&payload, "case_id").ok_or_else(|| missing("case_id"))?)
                .bind(
                    id(&payload, "from_organization_id")
                        .ok_or_else(|| missing("from_organization_id"))?,
                )
                .bind(
                    id(&payload, "to_organization_id")
                        .ok_or_else(|| missing("to_organization_id"))?,
                )
                .bind(text(&payload, "service_type").ok_or_else(|| missing("service_type"))?)
                .bind(at)
                .bind(at.unix_timestamp())
                .bind(payload["accept_by"].as_i64())
                .bind(text(&payload, "outcome_due_on"))
                .bind(id(&payload, "facility_id")),
        ],
        ("referral", kind) if kind.starts_with("referral.") => {
            let status = text(&payload, "status").ok_or_else(|| missing("status"))?;
            let mut writes = vec![
                sql::query(SET_REFERRAL_STATUS)
                    .bind(aggregate)
                    .bind(status.clone()),
            ];
            let day = at.unix_timestamp().div_euclid(86_400);
            match status.as_str() {
                // A place held (facilities that count places).
                "accepted" if payload["capacity_reserved"] == true => {
                    writes.push(sql::query(HOLD_PLACE).bind(aggregate).bind(day))
                }
                // Released, if one was held.
                "completed" | "cancelled" | "revoked" => {
                    writes.push(sql::query(RELEASE_PLACE).bind(aggregate).bind(day))
                }
                _ => {}
            }
            if status == "accepted" {
                writes.push(
                    sql::query(SET_ACCEPTED)
                        .bind(aggregate)
                        .bind(at)
                        .bind(at.unix_timestamp()),
                );
            }
            writes
        }
        _ => Vec::new(),
    })
}

/// "150.00" or "-12.5" in hundredths.
fn parse_amount(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, cents) = digits.split_once('.').unwrap_or((digits, ""));
    let units: i64 = units.parse().ok()?;
    let cents: i64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<i64>().ok()? * 10,
        2 => cents.parse().ok()?,
        _ => return None,
    };
    let value = units.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, payload: serde_json::Value) -> Event {
        Event {
            source: "intake".to_owned(),
            event_type: event_type.to_owned(),
            payload_json: payload.to_string(),
            ..Event::default()
        }
    }

    fn written(event: &Event) -> HavenResult<usize> {
        let at = time::macros::datetime!(2026-11-02 09:00 UTC);
        statements(event, Uuid::nil(), Uuid::nil(), at).map(|writes| writes.len())
    }

    #[test]
    fn amounts_are_read_in_hundredths() {
        assert_eq!(parse_amount("150.00"), Some(15_000));
        assert_eq!(parse_amount("-12.5"), Some(-1_250));
        assert_eq!(parse_amount("7"), Some(700));
        assert_eq!(parse_amount("1.234"), None);
        assert_eq!(parse_amount("twelve"), None);
        assert_eq!(parse_amount("92233720368547758.07"), Some(i64::MAX));
        assert_eq!(parse_amount("92233720368547758.08"), None, "overflow");
    }

    #[test]
    fn a_screening_writes_itself_and_one_label_per_value() {
        let created = event(
            "screening.created",
            serde_json::json!({
                "referral_source": "police",
                "exploitation_types": ["forced_labour", "sexual_exploitation"],
                "means_of_control": ["debt_bondage"],
            }),
        );
        assert_eq!(written(&created).ok(), Some(4));
    }

    #[test]
    fn a_missing_field_is_an_error_and_an_erased_event_writes_nothing() {
        let without_source = event("screening.created", serde_json::json!({}));
        assert!(written(&without_source).is_err());
        let erased = event(
            "screening.created",
            serde_json::from_str(haven_events::REDACTED_PAYLOAD).unwrap_or_default(),
        );
        assert_eq!(written(&erased).ok(), Some(0));
        let unknown = event("screening.viewed", serde_json::json!({}));
        assert_eq!(written(&unknown).ok(), Some(0));
    }
}
