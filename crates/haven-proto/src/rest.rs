//! How the REST API writes proto fields that prost's Rust types do not spell as JSON
//! clients expect; `build.rs` names these helpers in the `serialize_with` attributes
//! it puts on the generated fields.
//!
//! Enums travel as `i32` in prost messages and are written as their REST name (the
//! proto name without its prefix, lowercased), `null` when unspecified or unknown to
//! this build; timestamps are RFC 3339 strings; the empty string of an optional text
//! field is `null`.

use serde::{Serialize, Serializer};

/// The enum value of a wire number; `None` for the zero value (`*_UNSPECIFIED`) and
/// for numbers this build does not know.
fn known<E: TryFrom<i32>>(value: i32) -> Option<E> {
    if value == 0 {
        return None;
    }
    E::try_from(value).ok()
}

/// An enum field: its REST name, or `null`.
pub fn enum_value<E, S>(value: &i32, serializer: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    known::<E>(*value).serialize(serializer)
}

/// An `optional` enum field: its REST name, or `null` when absent or unspecified.
pub fn optional_enum_value<E, S>(value: &Option<i32>, serializer: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    value.and_then(known::<E>).serialize(serializer)
}

/// A repeated enum field: the REST names of its known values.
pub fn enum_values<E, S>(values: &[i32], serializer: S) -> Result<S::Ok, S::Error>
where
    E: TryFrom<i32> + Serialize,
    S: Serializer,
{
    serializer.collect_seq(values.iter().filter_map(|value| known::<E>(*value)))
}

/// A timestamp as RFC 3339, or `null` when absent or out of range.
pub fn timestamp<S: Serializer>(
    value: &Option<prost_types::Timestamp>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(instant) = value.as_ref().and_then(crate::from_timestamp) else {
        return serializer.serialize_none();
    };
    let text = instant
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    serializer.serialize_some(&text)
}

/// An optional text field: the text, or `null` when empty.
pub fn non_empty<S: Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    (!value.is_empty()).then_some(value).serialize(serializer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::referral::v1::{Organization, OrganizationType};

    fn organization() -> Organization {
        Organization {
            id: "0194f5c2-7d1e-7c39-9a51-1d2e3f405162".to_owned(),
            name: "Tamkin".to_owned(),
            organization_type: OrganizationType::Ngo as i32,
            settlement: "Baku".to_owned(),
            active: true,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_767_225_600,
                nanos: 500_000_000,
            }),
            version: 3,
        }
    }

    #[test]
    fn messages_are_written_with_rest_names_rfc3339_and_nulls() {
        assert_eq!(
            serde_json::to_value(organization()).unwrap(),
            json!({
                "id": "0194f5c2-7d1e-7c39-9a51-1d2e3f405162",
                "name": "Tamkin",
                "organization_type": "ngo",
                "settlement": "Baku",
                "active": true,
                "created_at": "2026-01-01T00:00:00.5Z",
                "version": 3,
            })
        );
        let bare = Organization {
            organization_type: 0,
            settlement: String::new(),
            created_at: None,
            ..organization()
        };
        let json = serde_json::to_value(bare).unwrap();
        assert_eq!(json["organization_type"], json!(null));
        assert_eq!(json["settlement"], json!(null));
        assert_eq!(json["created_at"], json!(null));
        let unknown = Organization {
            organization_type: 9999,
            ..organization()
        };
        assert_eq!(
            serde_json::to_value(unknown).unwrap()["organization_type"],
            json!(null)
        );
    }

    #[test]
    fn enums_read_their_rest_names_only() {
        let parsed: OrganizationType =
            serde_json::from_value(json!("international_organization")).unwrap();
        assert_eq!(parsed, OrganizationType::InternationalOrganization);
        for refused in ["unspecified", "ORGANIZATION_TYPE_NGO", "Ngo", "NGO"] {
            assert!(
                serde_json::from_value::<OrganizationType>(json!(refused)).is_err(),
                "{refused}"
            );
        }
        assert!(!OrganizationType::ALL.contains(&OrganizationType::Unspecified));
        assert_eq!(OrganizationType::ALL.len(), 5);
    }
}
