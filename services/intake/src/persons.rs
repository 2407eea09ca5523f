//! Persons: their personal data, how it is validated, encrypted and indexed.
//!
//! Names, birth date, phone, address and identity document numbers are stored only as
//! AEAD ciphertext under the person's own data key, which is wrapped by the versioned
//! master key. The birth year, gender, citizenships and languages are kept in the
//! clear for statistics. Duplicate search uses keyed blind indexes only.

use std::path::Path;
use std::sync::Arc;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use haven_audit::{AuditedKeys, OpenedKey, Receipt, SealingKey};
use haven_crypto::{BlindIndex, BlindIndexKey, BlindIndexValue, FieldContext, KeyWrapper};
use haven_error::{HavenError, HavenResult};
use haven_proto::intake::v1 as pb;

/// Gender (HTCDS list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Transgender or other.
    TransgenderOrOther,
    /// Not known.
    Unknown,
}

haven_storage::stored_enum!(Gender, pb::Gender,
    Female => "female" / Female,
    Male => "male" / Male,
    TransgenderOrOther => "transgender_or_other" / TransgenderOrOther,
    Unknown => "unknown" / Unknown,
);

/// A person's details in the clear. Lives only in memory, never in logs or events.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PersonDetails {
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Patronymic.
    pub patronymic: String,
    /// Birth date, when known.
    pub birth_date: Option<Date>,
    /// Birth year (from the date, or estimated).
    pub birth_year: Option<i32>,
    /// Gender.
    pub gender: Option<Gender>,
    /// ISO 3166-1 alpha-2 codes.
    pub citizenships: Vec<String>,
    /// ISO 639 codes.
    pub languages: Vec<String>,
    /// Phone.
    pub phone: String,
    /// Address.
    pub address: String,
    /// Identity document number.
    pub identity_document_number: String,
}

// Personal data must never reach a log line through `{:?}`.
impl std::fmt::Debug for PersonDetails {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PersonDetails([redacted])")
    }
}

impl PersonDetails {
    /// The full name as one string, for the blind index.
    pub fn full_name(&self) -> String {
        [&self.given_name, &self.family_name]
            .into_iter()
            .filter(|part| !part.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Validates the wire form.
    pub fn from_proto(details: pb::PersonDetails) -> HavenResult<Self> {
        let text = |field: &str, value: String, max: usize| -> HavenResult<String> {
            let value = value.trim().to_owned();
            if value.chars().count() > max || value.chars().any(char::is_control) {
                return Err(HavenError::invalid_field(
                    format!("person.{field}"),
                    format!("must be at most {max} printable characters"),
                ));
            }
            Ok(value)
        };
        let birth_date = match details.birth_date.trim() {
            "" => None,
            date => Some(
                Date::parse(date, &time::format_description::well_known::Iso8601::DATE).map_err(
                    |_| {
                        HavenError::invalid_field("person.birth_date", "must be a date, YYYY-MM-DD")
                    },
                )?,
            ),
        };
        let this_year = OffsetDateTime::now_utc().year();
        let birth_year = match (birth_date, details.birth_year) {
            (Some(date), 0) => Some(date.year()),
            (Some(date), year) if year != date.year() => {
                return Err(HavenError::invalid_field(
                    "person.birth_year",
                    "differs from birth_date",
                ));
            }
            (_, 0) => None,
            (_, year) if (1900..=this_year).contains(&year) => Some(year),
            _ => {
                return Err(HavenError::invalid_field(
                    "person.birth_year",
                    "must be a year between 1900 and now",
                ));
            }
        };
        let gender = match pb::Gender::try_from(details.gender) {
            Ok(pb::Gender::Unspecified) => None,
            Ok(gender) => Gender::from_proto(gender),
            Err(_) => return Err(HavenError::invalid_field("person.gender", "unknown gender")),
        };
        let codes = |field: &str,
                     values: Vec<String>,
                     lengths: std::ops::RangeInclusive<usize>|
         -> HavenResult<Vec<String>> {
            values
                .into_iter()
                .map(|value| {
                    let value = value.trim().to_ascii_lowercase();
                    if lengths.contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_lowercase())
                    {
                        Ok(value)
                    } else {
                        Err(HavenError::invalid_field(
                            format!("person.{field}"),
                            "must be ISO codes",
                        ))
                    }
                })
                .collect()
        };
        Ok(Self {
            given_name: text("given_name", details.given_name, 100)?,
            family_name: text("family_name", details.family_name, 100)?,
            patronymic: text("patronymic", details.patronymic, 100)?,
            birth_date,
            birth_year,
            gender,
            citizenships: codes("citizenships", details.citizenships, 2..=2)?,
            languages: codes("languages", details.languages, 2..=3)?,
            phone: text("phone", details.phone, 40)?,
            address: text("address", details.address, 300)?,
            identity_document_number: text(
                "identity_document_number",
                details.identity_document_number,
                40,
            )?,
        })
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::PersonDetails {
        pb::PersonDetails {
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            patronymic: self.patronymic.clone(),
            birth_date: self
                .birth_date
                .map(|date| date.to_string())
                .unwrap_or_default(),
            birth_year: self.birth_year.unwrap_or_default(),
            gender: self
                .gender
                .map(|gender| gender.to_proto().into())
                .unwrap_or_default(),
            citizenships: self.citizenships.clone(),
            languages: self.languages.clone(),
            phone: self.phone.clone(),
            address: self.address.clone(),
            identity_document_number: self.identity_document_number.clone(),
        }
    }
}

/// A stored person, with details when they could be decrypted (not after erasure).
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Id.
    pub id: Uuid,
    /// Pseudonymous code.
    pub code: String,
    /// Organisation that recorded the person.
    pub organization_id: Uuid,
    /// Decrypted details; `None` once erased.
    pub details: Option<PersonDetails>,
    /// When erased, if erased.
    pub erased_at: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
}

impl Person {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Person {
        pb::Person {
            id: self.id.to_string(),
            code: self.code.clone(),
            organization_id: self.organization_id.to_string(),
            details: self.details.as_ref().map(PersonDetails::to_proto),
            erased: self.erased_at.is_some(),
            created_at: Some(haven_proto::timestamp(self.created_at)),
        }
    }
}

/// The encrypted columns of `persons`, in order.
pub const ENCRYPTED_COLUMNS: [&str; 7] = [
    "given_name",
    "family_name",
    "patronymic",
    "birth_date",
    "phone",
    "address",
    "identity_document_number",
];

/// The ciphertexts of one person's encrypted columns (`None` for empty values).
pub type EncryptedColumns = [Option<Vec<u8>>; 7];

/// Keys and indexes for personal data, loaded once per process.
#[derive(Clone)]
pub struct PersonCrypto {
    keys: AuditedKeys,
    blind_index: BlindIndex,
}

impl std::fmt::Debug for PersonCrypto {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PersonCrypto")
            .finish_non_exhaustive()
    }
}

pub use haven_crypto::MASTER_KEYRING_FILE;
/// File of the blind-index key under the keys directory.
pub const BLIND_INDEX_KEY_FILE: &str = "blind-index.key";

impl PersonCrypto {
    /// Loads (in development: creates) the master keyring and blind-index key in
    /// `keys_dir`.
    pub fn load(keys_dir: &Path) -> anyhow::Result<Self> {
        let keys = AuditedKeys::load(keys_dir)
            .map_err(|error| anyhow::anyhow!("master keyring: {error}"))?;
        let blind_key = BlindIndexKey::load_or_create(&keys_dir.join(BLIND_INDEX_KEY_FILE))
            .map_err(|error| anyhow::anyhow!("blind-index key: {error}"))?;
        Ok(Self {
            keys,
            blind_index: BlindIndex::new(&blind_key),
        })
    }

    /// From explicit keys (tests, or a KMS-backed wrapper).
    pub fn new(keyring: Arc<dyn KeyWrapper>, blind_key: &BlindIndexKey) -> Self {
        Self {
            keys: AuditedKeys::new(keyring),
            blind_index: BlindIndex::new(blind_key),
        }
    }

    /// A new data key for a record that holds personal data (a person, or a screening
    /// for its narratives), to encrypt with, and its wrapped form to store. The wrap is
    /// bound to `owner_id`, so a wrapped key copied to another record does not open.
    pub fn generate(&self, owner_id: Uuid) -> HavenResult<(SealingKey, Vec<u8>)> {
        self.keys.generate(owner_id)
    }

    /// The stored data key of `owner_id`, to encrypt new values with.
    pub fn sealing_key(&self, owner_id: Uuid, wrapped: &[u8]) -> HavenResult<SealingKey> {
        self.keys.sealing_key(owner_id, wrapped)
    }

    /// The stored data key of `owner_id`, to decrypt with: only for the receipt of
    /// the audit entry about `owner_id` that the read appended.
    pub fn open(
        &self,
        receipt: &Receipt,
        owner_id: Uuid,
        wrapped: &[u8],
    ) -> HavenResult<OpenedKey> {
        self.keys.open(receipt, owner_id, wrapped)
    }

    /// Re-wraps the stored data key of `owner_id` under the active master version.
    pub fn rewrap(&self, owner_id: Uuid, wrapped: &[u8]) -> HavenResult<Vec<u8>> {
        self.keys.rewrap(owner_id, wrapped)
    }

    /// Encrypts every personal field, each bound to its column and the person's row.
    pub fn encrypt(
        &self,
        key: &SealingKey,
        person_id: Uuid,
        details: &PersonDetails,
    ) -> HavenResult<EncryptedColumns> {
        let birth_date = details
            .birth_date
            .map(|date| date.to_string())
            .unwrap_or_default();
        let values = [
            &details.given_name,
            &details.family_name,
            &details.patronymic,
            &birth_date,
            &details.phone,
            &details.address,
            &details.identity_document_number,
        ];
        let mut columns: EncryptedColumns = Default::default();
        for ((column, value), slot) in ENCRYPTED_COLUMNS.iter().zip(values).zip(columns.iter_mut())
        {
            if value.is_empty() {
                continue;
            }
            let context = FieldContext::new("persons", column, person_id.as_bytes());
            *slot = Some(key.encrypt_str(value, &context)?);
        }
        Ok(columns)
    }

    /// Decrypts the personal fields of a stored person.
    pub fn decrypt(
        &self,
        key: &OpenedKey,
        person_id: Uuid,
        columns: &EncryptedColumns,
        clear: ClearFields,
    ) -> HavenResult<PersonDetails> {
        let mut values: [String; 7] = Default::default();
        for ((column, stored), value) in
            ENCRYPTED_COLUMNS.iter().zip(columns).zip(values.iter_mut())
        {
            if let Some(stored) = stored {
                let context = FieldContext::new("persons", column, person_id.as_bytes());
                *value = key.decrypt_str(stored, &context)?;
            }
        }
        let [
            given_name,
            family_name,
            patronymic,
            birth_date,
            phone,
            address,
            identity_document_number,
        ] = values;
        let birth_date = match birth_date.as_str() {
            "" => None,
            date => Some(
                Date::parse(date, &time::format_description::well_known::Iso8601::DATE)
                    .map_err(HavenError::internal)?,
            ),
        };
        Ok(PersonDetails {
            given_name,
            family_name,
            patronymic,
            birth_date,
            birth_year: clear.birth_year,
            gender: clear.gender,
            citizenships: clear.citizenships,
            languages: clear.languages,
            phone,
            address,
            identity_document_number,
        })
    }

    /// Blind-index values of a person (empty when the name is empty).
    pub fn index_values(&self, details: &PersonDetails) -> Vec<BlindIndexValue> {
        self.blind_index
            .values(&details.full_name(), details.birth_year)
    }
}

/// The person fields stored in the clear.
#[derive(Debug, Clone, Default)]
pub struct ClearFields {
    /// Birth year.
    pub birth_year: Option<i32>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Citizenships.
    pub citizenships: Vec<String>,
    /// Languages.
    pub languages: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_never_print() {
        let details = PersonDetails {
            given_name: "Aynur".into(),
            ..PersonDetails::default()
        };
        assert!(!format!("{details:?}").contains("Aynur"));
    }

    #[test]
    fn validation_names_the_field() {
        let bad_date = pb::PersonDetails {
            birth_date: "31/12/1990".into(),
            ..Default::default()
        };
        let error = PersonDetails::from_proto(bad_date).unwrap_err();
        assert_eq!(error.violations()[0].field, "person.birth_date");
        let year_from_date = PersonDetails::from_proto(pb::PersonDetails {
            birth_date: "1990-12-31".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(year_from_date.birth_year, Some(1990));
    }
}
