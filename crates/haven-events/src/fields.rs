//! The class of every payload field of every event type, and what a follower of a feed
//! receives of a payload.
//!
//! [`EVENT_FIELDS`] is the one table: an event type or payload field missing from it
//! cannot be written ([`crate::OutboxWrite::append_event`] refuses it), so every test
//! that drives a producer also checks the table is complete. Services following a
//! feed receive whole payloads; a person following a feed receives only
//! [`FEED_CLASSES_FOR_PEOPLE`] fields their roles may receive ([`payload_for_person`]),
//! deny by default.

use haven_auth::Role;
use haven_auth::fields::{FieldClass, any_may_receive};
use serde_json::{Map, Value};

use FieldClass::{Identifying, Operational, QuasiIdentifier};

/// One event type and the class of each field its payload may carry. A field's class
/// covers everything nested under it.
#[derive(Debug, Clone, Copy)]
pub struct EventFields {
    /// Dotted type, e.g. `case.opened`.
    pub event_type: &'static str,
    /// Top-level payload keys and their classes.
    pub fields: &'static [(&'static str, FieldClass)],
}

const fn event(
    event_type: &'static str,
    fields: &'static [(&'static str, FieldClass)],
) -> EventFields {
    EventFields { event_type, fields }
}

/// Every field of a referral event: the workflow between two organisations.
const REFERRAL: &[(&str, FieldClass)] = &[
    ("referral_id", Operational),
    ("case_id", Operational),
    ("from_organization_id", Operational),
    ("to_organization_id", Operational),
    ("facility_id", Operational),
    ("service_type", Operational),
    ("urgency", Operational),
    ("status", Operational),
    ("on", Operational),
    ("accept_by", Operational),
    ("outcome_due_on", Operational),
    ("capacity_reserved", Operational),
];

const TRANSFER: &[(&str, FieldClass)] = &[
    ("transfer_id", Operational),
    ("from", Operational),
    ("to", Operational),
];

/// The classification. Ids of workflow objects (screening, case, referral, service,
/// payment), states, coded reasons, workflow due dates and counts are operational. A
/// person's id is a quasi-identifier: it links everything recorded about one person
/// across events and feeds. Whatever describes the person or their circumstances
/// (demographics, places, exploitation, risk, needs, scores, money, the exact time of
/// a screening or decision) is a quasi-identifier; a staff member's id is identifying;
/// a shelter's settlement is a quasi-identifier (it leads to the people it houses).
pub const EVENT_FIELDS: &[EventFields] = &[
    // intake
    event(
        "screening.created",
        &[
            ("referral_source", Operational),
            ("settlement", QuasiIdentifier),
            ("is_minor", QuasiIdentifier),
            ("screened_at", QuasiIdentifier),
            ("person_id", QuasiIdentifier),
            ("gender", QuasiIdentifier),
            ("birth_year", QuasiIdentifier),
            ("exploitation_types", QuasiIdentifier),
            ("means_of_control", QuasiIdentifier),
            ("citizenships", QuasiIdentifier),
            ("risk_level", QuasiIdentifier),
        ],
    ),
    event(
        "screening.consent_recorded",
        &[("purpose", Operational), ("given", Operational)],
    ),
    event(
        "screening.decision_recorded",
        &[
            ("stage", Operational),
            ("previous_stage", Operational),
            ("deciding_organization_type", Operational),
            ("decided_at", QuasiIdentifier),
        ],
    ),
    event(
        "screening.updated",
        &[
            ("exploitation_types", QuasiIdentifier),
            ("means_of_control", QuasiIdentifier),
            ("risk_level", QuasiIdentifier),
            ("indicator_set_version", Operational),
        ],
    ),
    event("screening.case_opened", &[("case_id", Operational)]),
    event(
        "screening.re_trafficking_confirmed",
        &[
            ("person_id", QuasiIdentifier),
            ("linked_person_id", QuasiIdentifier),
        ],
    ),
    event(
        "clock.started",
        &[("screening_id", Operational), ("name", Operational)],
    ),
    event(
        "clock.completed",
        &[("screening_id", Operational), ("name", Operational)],
    ),
    event("person.erased", &[("person_id", QuasiIdentifier)]),
    // case
    event(
        "case.opened",
        &[
            ("case_id", Operational),
            ("code", Operational),
            ("screening_id", Operational),
            ("status", Operational),
            ("stage", Operational),
        ],
    ),
    event(
        "case.stage_changed",
        &[
            ("from", Operational),
            ("to", Operational),
            ("status", Operational),
        ],
    ),
    event(
        "case.assessed",
        &[
            ("assessment_id", Operational),
            ("kind", Operational),
            ("scores", QuasiIdentifier),
        ],
    ),
    event("case.sealed", &[("case_id", Operational)]),
    event(
        "case.updated",
        &[
            ("risk_level", QuasiIdentifier),
            ("flags", QuasiIdentifier),
            ("caseworkers_assigned", Operational),
        ],
    ),
    event("case.transfer_requested", TRANSFER),
    event("case.transferred", TRANSFER),
    event("case.transfer_rejected", TRANSFER),
    event(
        "case.plan_submitted",
        &[("plan_version", Operational), ("domains", QuasiIdentifier)],
    ),
    event("case.plan_approved", &[("plan_version", Operational)]),
    event("case.plan_rejected", &[("plan_version", Operational)]),
    event(
        "case.plan_action_updated",
        &[
            ("plan_version", Operational),
            ("action_id", Operational),
            ("status", Operational),
        ],
    ),
    event(
        "case.service_added",
        &[
            ("service_id", Operational),
            ("type", Operational),
            ("provider_organization_id", Operational),
            ("status", Operational),
            ("referral_id", Operational),
        ],
    ),
    event(
        "case.service_updated",
        &[
            ("service_id", Operational),
            ("type", Operational),
            ("from", Operational),
            ("to", Operational),
        ],
    ),
    event(
        "case.payment_recorded",
        &[
            ("payment_id", Operational),
            ("amount", QuasiIdentifier),
            ("currency", QuasiIdentifier),
            ("reverses_payment_id", Operational),
        ],
    ),
    event(
        "case.follow_up_scheduled",
        &[
            ("follow_up_id", Operational),
            ("kind", Operational),
            ("due_on", Operational),
        ],
    ),
    event(
        "case.follow_up_done",
        &[("follow_up_id", Operational), ("outcome", Operational)],
    ),
    event(
        "case.note_added",
        &[("note_id", Operational), ("visibility", Operational)],
    ),
    event(
        "case.closure_requested",
        &[
            ("reason", Operational),
            ("services_in_progress", Operational),
            ("overridden", Operational),
        ],
    ),
    event(
        "case.closed",
        &[
            ("reason", Operational),
            ("status", Operational),
            ("from_stage", Operational),
        ],
    ),
    event("case.closure_rejected", &[("reason", Operational)]),
    event(
        "case.reopened",
        &[("from_status", Operational), ("stage", Operational)],
    ),
    // referral
    event(
        "organization.created",
        &[("organization_type", Operational)],
    ),
    event(
        "facility.created",
        &[
            ("facility_id", Operational),
            ("settlement", QuasiIdentifier),
            ("service_types", Operational),
            ("capacity_total", Operational),
        ],
    ),
    event(
        "facility.updated",
        &[
            ("facility_id", Operational),
            ("service_types", Operational),
            ("capacity_total", Operational),
            ("active", Operational),
            ("by", Identifying),
        ],
    ),
    event("referral.requested", REFERRAL),
    event("referral.accepted", REFERRAL),
    event("referral.declined", REFERRAL),
    event("referral.started", REFERRAL),
    event("referral.completed", REFERRAL),
    event("referral.cancelled", REFERRAL),
    event("referral.revoked", REFERRAL),
];

/// The classes a person following a feed can receive at most, whatever their roles.
/// A feed is read record by record and cannot apply a person's consent or erasure to
/// what was already sent, so people (analysts, a ministry system, administrators) get
/// the workflow only — which event, about which pseudonymous object, in which state —
/// and nothing that describes a person. Services get whole payloads.
pub const FEED_CLASSES_FOR_PEOPLE: &[FieldClass] = &[Operational];

/// The classification of `event_type`, if it has one.
pub fn event_fields(event_type: &str) -> Option<&'static EventFields> {
    EVENT_FIELDS
        .iter()
        .find(|fields| fields.event_type == event_type)
}

/// The class of `field` in a payload of `event_type`, if classified.
pub fn class_of(event_type: &str, field: &str) -> Option<FieldClass> {
    event_fields(event_type)?
        .fields
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, class)| *class)
}

/// What is not classified in a payload of `event_type`: the event type itself, or
/// each top-level key missing from [`EVENT_FIELDS`]. Empty when fully classified.
pub fn unclassified(event_type: &str, payload: &Value) -> Vec<String> {
    if event_fields(event_type).is_none() {
        return vec![format!("event type {event_type}")];
    }
    match payload {
        Value::Object(fields) => fields
            .keys()
            .filter(|field| class_of(event_type, field).is_none())
            .map(|field| format!("{event_type}.{field}"))
            .collect(),
        _ => vec![format!("{event_type} payload that is not an object")],
    }
}

/// The part of a payload a person with `roles` may receive from a feed: the fields
/// whose class is in [`FEED_CLASSES_FOR_PEOPLE`] and which one of their roles may
/// receive. Unclassified types and fields are withheld; a redacted payload stays
/// redacted.
pub fn payload_for_person(event_type: &str, payload: &Value, roles: &[Role]) -> Value {
    retain(event_type, payload, |class| {
        FEED_CLASSES_FOR_PEOPLE.contains(&class) && any_may_receive(roles, class)
    })
}

/// The part of a payload shown to a caller with `roles` when they read an event as
/// part of a record (a case's timeline): the fields whose class one of their roles
/// may receive. Unclassified types and fields are withheld.
pub fn payload_for_roles(event_type: &str, payload: &Value, roles: &[Role]) -> Value {
    retain(event_type, payload, |class| any_may_receive(roles, class))
}

fn retain(event_type: &str, payload: &Value, keep: impl Fn(FieldClass) -> bool) -> Value {
    if crate::is_redacted(payload) {
        return payload.clone();
    }
    let Value::Object(fields) = payload else {
        return Value::Object(Map::new());
    };
    let kept = fields
        .iter()
        .filter(|(field, _)| class_of(event_type, field).is_some_and(&keep))
        .map(|(field, value)| (field.clone(), value.clone()))
        .collect();
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_type_and_field_is_listed_once() {
        for (index, fields) in EVENT_FIELDS.iter().enumerate() {
            assert!(
                EVENT_FIELDS[index + 1..]
                    .iter()
                    .all(|other| other.event_type != fields.event_type),
                "{} listed twice",
                fields.event_type
            );
            for (position, (field, _)) in fields.fields.iter().enumerate() {
                assert!(
                    fields.fields[position + 1..]
                        .iter()
                        .all(|(other, _)| other != field),
                    "{}.{field} listed twice",
                    fields.event_type
                );
            }
        }
    }

    #[test]
    fn people_receive_operational_fields_only_and_nothing_unclassified() {
        let payload = json!({
            "referral_source": "police",
            "person_id": "0190c1d2-0000-7000-8000-000000000000",
            "birth_year": 1990,
            "settlement": "Ganja",
            "invented": "x",
        });
        for roles in [
            vec![Role::Admin],
            vec![Role::Analyst],
            vec![Role::Analyst, Role::Supervisor],
        ] {
            assert_eq!(
                payload_for_person("screening.created", &payload, &roles),
                json!({"referral_source": "police"}),
                "{roles:?}"
            );
        }
        assert_eq!(
            payload_for_person("screening.invented", &payload, &[Role::Admin]),
            json!({})
        );
        let redacted: Value = serde_json::from_str(crate::REDACTED_PAYLOAD).unwrap_or_default();
        assert!(crate::is_redacted(&payload_for_person(
            "screening.created",
            &redacted,
            &[Role::Analyst]
        )));
    }

    #[test]
    fn a_record_reader_receives_what_their_roles_may_receive() {
        let payload =
            json!({"payment_id": "p", "amount": "10.00", "currency": "AZN", "invented": 1});
        assert_eq!(
            payload_for_roles("case.payment_recorded", &payload, &[Role::Auditor]),
            json!({"payment_id": "p"})
        );
        assert_eq!(
            payload_for_roles("case.payment_recorded", &payload, &[Role::CaseWorker]),
            json!({"payment_id": "p", "amount": "10.00", "currency": "AZN"})
        );
    }

    #[test]
    fn unclassified_names_what_is_missing() {
        assert!(unclassified("case.sealed", &json!({"case_id": "x"})).is_empty());
        assert_eq!(
            unclassified("case.sealed", &json!({"case_id": "x", "reason": "y"})),
            vec!["case.sealed.reason".to_owned()]
        );
        assert_eq!(
            unclassified("case.invented", &json!({})),
            vec!["event type case.invented".to_owned()]
        );
    }
}
