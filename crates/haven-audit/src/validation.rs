//! The shape every field of a new entry must have.
//!
//! Codes are short and code-like so that an entry cannot quietly become a place for
//! personal data; the limits also bound the size of the permanent trail. Error
//! messages name the field and the rule, never the value.

use crate::entry::NewAuditEntry;

const MAX_ACTOR: usize = haven_auth::MAX_SUBJECT_BYTES;
const MAX_ACTION: usize = 64;
const MAX_RECORD_TYPE: usize = 32;
const MAX_PURPOSE: usize = 64;

/// Checks `entry`, or says which field is wrong and why.
pub(crate) fn check(entry: &NewAuditEntry) -> Result<(), sqlx::Error> {
    if entry.actor.is_empty() || entry.actor.len() > MAX_ACTOR || has_control(&entry.actor) {
        return Err(invalid(
            "actor",
            "must be 1 to 128 bytes without control characters",
        ));
    }
    if entry.action.len() > MAX_ACTION || !is_dotted_code(entry.action) {
        return Err(invalid(
            "action",
            "must be a dotted lowercase code of at most 64 bytes, e.g. person.read",
        ));
    }
    if entry.record_type.len() > MAX_RECORD_TYPE || !is_code(entry.record_type) {
        return Err(invalid(
            "record_type",
            "must be a lowercase code of at most 32 bytes, e.g. person",
        ));
    }
    if entry.purpose.is_empty() || entry.purpose.len() > MAX_PURPOSE || has_control(&entry.purpose)
    {
        return Err(invalid(
            "purpose",
            "must be 1 to 64 bytes without control characters",
        ));
    }
    // The same rule the gateway and every gRPC service apply to incoming ids.
    if !entry.request_id.is_empty() && !haven_auth::request_id::is_valid(&entry.request_id) {
        return Err(invalid(
            "request_id",
            "must be empty or 1 to 64 ASCII letters, digits or dashes",
        ));
    }
    if let Some(via) = &entry.via
        && (!via.starts_with("service:") || via.len() > MAX_ACTOR || has_control(via))
    {
        return Err(invalid(
            "via",
            "must be a service subject (`service:<name>`) of at most 128 bytes",
        ));
    }
    Ok(())
}

fn invalid(field: &str, rule: &str) -> sqlx::Error {
    sqlx::Error::InvalidArgument(format!("audit entry field `{field}` {rule}"))
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// `person`, `case_note`: a lowercase letter, then lowercase letters, digits or `_`.
fn is_code(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_lowercase())
        && bytes.all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// `person.read`: two or more codes joined by dots.
fn is_dotted_code(text: &str) -> bool {
    text.contains('.') && text.split('.').all(is_code)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::check;
    use crate::entry::{ActorKind, NewAuditEntry};

    fn valid() -> NewAuditEntry {
        NewAuditEntry {
            actor: "user-1".to_owned(),
            actor_kind: ActorKind::User,
            organization_id: Uuid::nil(),
            action: "person.read",
            record_type: "person",
            record_id: Uuid::nil(),
            purpose: "assistance".to_owned(),
            request_id: String::new(),
            outcome: None,
            via: None,
        }
    }

    #[test]
    fn a_well_formed_entry_passes() {
        assert!(check(&valid()).is_ok());
        assert!(
            check(&NewAuditEntry {
                action: "case.stage.update",
                record_type: "case_note",
                request_id: "0190b0c2-aaaa".to_owned(),
                ..valid()
            })
            .is_ok()
        );
    }

    #[test]
    fn malformed_fields_are_refused_and_named() {
        let cases = [
            (
                "actor",
                NewAuditEntry {
                    actor: String::new(),
                    ..valid()
                },
            ),
            (
                "action",
                NewAuditEntry {
                    action: "read",
                    ..valid()
                },
            ),
            (
                "action",
                NewAuditEntry {
                    action: "Person.Read",
                    ..valid()
                },
            ),
            (
                "action",
                NewAuditEntry {
                    action: "person..read",
                    ..valid()
                },
            ),
            (
                "record_type",
                NewAuditEntry {
                    record_type: "a person",
                    ..valid()
                },
            ),
            (
                "purpose",
                NewAuditEntry {
                    purpose: String::new(),
                    ..valid()
                },
            ),
            (
                "purpose",
                NewAuditEntry {
                    purpose: "x".repeat(65),
                    ..valid()
                },
            ),
            (
                "purpose",
                NewAuditEntry {
                    purpose: "line\nbreak".to_owned(),
                    ..valid()
                },
            ),
            (
                "request_id",
                NewAuditEntry {
                    request_id: "a b".to_owned(),
                    ..valid()
                },
            ),
            (
                "request_id",
                NewAuditEntry {
                    request_id: "event:intake:42".to_owned(),
                    ..valid()
                },
            ),
            (
                "request_id",
                NewAuditEntry {
                    request_id: "r".repeat(65),
                    ..valid()
                },
            ),
            (
                "via",
                NewAuditEntry {
                    via: Some("user-2".to_owned()),
                    ..valid()
                },
            ),
        ];
        for (field, entry) in cases {
            let error = check(&entry)
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default();
            assert!(error.contains(&format!("`{field}`")), "{field}: {error}");
        }
    }

    #[test]
    fn messages_do_not_echo_the_value() {
        let entry = NewAuditEntry {
            purpose: "Aysel Mammadova, born 1990\n".to_owned(),
            ..valid()
        };
        let error = check(&entry)
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(!error.contains("Aysel"));
    }
}
