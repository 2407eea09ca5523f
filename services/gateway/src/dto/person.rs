//! Persons: personal data, read only through audited calls and never cached.

use haven_proto::intake::v1 as intake;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::{Gender, MatchKind};
use super::{from_timestamp, non_empty};

/// A person's details. Intake stores them only encrypted, field by field.
#[derive(Deserialize, Serialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonDetails {
    /// Given name.
    #[serde(default)]
    pub(crate) given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub(crate) family_name: Option<String>,
    /// Patronymic.
    #[serde(default)]
    pub(crate) patronymic: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    #[serde(default)]
    pub(crate) birth_date: Option<String>,
    /// Birth year, when only the year or an estimate is known.
    #[serde(default)]
    pub(crate) birth_year: Option<i32>,
    /// Gender.
    #[serde(default)]
    pub(crate) gender: Option<Gender>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub(crate) citizenships: Vec<String>,
    /// ISO 639 codes.
    #[serde(default)]
    pub(crate) languages: Vec<String>,
    /// Phone.
    #[serde(default)]
    pub(crate) phone: Option<String>,
    /// Address.
    #[serde(default)]
    pub(crate) address: Option<String>,
    /// Identity document number.
    #[serde(default)]
    pub(crate) identity_document_number: Option<String>,
}

// Personal data never reaches a log line through `{:?}`.
impl std::fmt::Debug for PersonDetails {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PersonDetails([redacted])")
    }
}

impl From<PersonDetails> for intake::PersonDetails {
    fn from(details: PersonDetails) -> Self {
        Self {
            given_name: details.given_name.unwrap_or_default(),
            family_name: details.family_name.unwrap_or_default(),
            patronymic: details.patronymic.unwrap_or_default(),
            birth_date: details.birth_date.unwrap_or_default(),
            birth_year: details.birth_year.unwrap_or_default(),
            gender: details.gender.map(Gender::to_proto).unwrap_or_default(),
            citizenships: details.citizenships,
            languages: details.languages,
            phone: details.phone.unwrap_or_default(),
            address: details.address.unwrap_or_default(),
            identity_document_number: details.identity_document_number.unwrap_or_default(),
        }
    }
}

impl From<intake::PersonDetails> for PersonDetails {
    fn from(details: intake::PersonDetails) -> Self {
        Self {
            given_name: non_empty(details.given_name),
            family_name: non_empty(details.family_name),
            patronymic: non_empty(details.patronymic),
            birth_date: non_empty(details.birth_date),
            birth_year: (details.birth_year != 0).then_some(details.birth_year),
            gender: Gender::from_proto(details.gender),
            citizenships: details.citizenships,
            languages: details.languages,
            phone: non_empty(details.phone),
            address: non_empty(details.address),
            identity_document_number: non_empty(details.identity_document_number),
        }
    }
}

/// A person: pseudonymous code and, unless erased, their details.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Person {
    /// Person id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Pseudonymous code shown instead of the name.
    pub(crate) code: String,
    /// Organisation that recorded the person.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Details; `null` once erased.
    pub(crate) details: Option<PersonDetails>,
    /// Whether the person has been erased.
    pub(crate) erased: bool,
    /// When the person was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) created_at: Option<OffsetDateTime>,
}

impl From<intake::Person> for Person {
    fn from(person: intake::Person) -> Self {
        Self {
            id: person.id,
            code: person.code,
            organization_id: person.organization_id,
            details: person.details.map(PersonDetails::from),
            erased: person.erased,
            created_at: from_timestamp(person.created_at),
        }
    }
}

/// Body of `DELETE /v1/persons/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasePerson {
    /// Why the person is erased (legal basis or request reference).
    pub(crate) reason: String,
}

/// Another person whose name and birth year match. A record of another organisation
/// shows only which organisation holds it (`restricted`): contact them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PersonMatch {
    /// The matching person (`null` when restricted).
    #[schema(format = Uuid)]
    pub(crate) person_id: Option<String>,
    /// Their pseudonymous code (`null` when restricted).
    pub(crate) person_code: Option<String>,
    /// The organisation holding the record.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Held by another organisation: only `organization_id` is disclosed.
    pub(crate) restricted: bool,
    /// Whether the whole name matched or a part of it.
    pub(crate) kind: Option<MatchKind>,
    /// Their screenings visible to you.
    pub(crate) screening_ids: Vec<String>,
}

/// Duplicate candidates of a screening's person.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Matches {
    /// Matching persons.
    pub(crate) items: Vec<PersonMatch>,
}

impl From<intake::FindMatchesResponse> for Matches {
    fn from(response: intake::FindMatchesResponse) -> Self {
        Self {
            items: response
                .matches
                .into_iter()
                .map(|found| PersonMatch {
                    person_id: non_empty(found.person_id),
                    person_code: non_empty(found.person_code),
                    organization_id: found.organization_id,
                    restricted: found.restricted,
                    kind: MatchKind::from_proto(found.kind),
                    screening_ids: found.screening_ids,
                })
                .collect(),
        }
    }
}

/// One access to a person, from the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessEntry {
    /// Position in the audit trail.
    pub(crate) sequence: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) occurred_at: Option<OffsetDateTime>,
    /// Who (subject).
    pub(crate) actor: String,
    /// Their organisation.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// What they did, e.g. `person.read`.
    pub(crate) action: String,
    /// The purpose they stated.
    pub(crate) purpose: String,
    /// Request id.
    pub(crate) request_id: String,
}

/// One page of the access log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccessLog {
    /// Entries, oldest first.
    pub(crate) items: Vec<AccessEntry>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

impl From<intake::AccessEntry> for AccessEntry {
    fn from(entry: intake::AccessEntry) -> Self {
        Self {
            sequence: entry.sequence,
            occurred_at: from_timestamp(entry.occurred_at),
            actor: entry.actor,
            organization_id: entry.organization_id,
            action: entry.action,
            purpose: entry.purpose,
            request_id: entry.request_id,
        }
    }
}

/// Body of `POST /v1/screenings/{id}/matches/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmMatch {
    /// The matching person confirmed to be the screening's person.
    #[schema(format = Uuid)]
    pub(crate) person_id: uuid::Uuid,
}
