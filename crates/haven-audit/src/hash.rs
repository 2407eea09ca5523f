//! The hash chain.
//!
//! `hash` = SHA-256 over this byte string, every part in this order:
//!
//! 1. the domain tag `haven-audit/v1`,
//! 2. `sequence` (8 bytes, big-endian two's complement),
//! 3. `entry_id` (16 bytes, RFC 9562 byte order),
//! 4. `occurred_at` (16 bytes, big-endian two's complement nanoseconds since
//!    1970-01-01T00:00:00Z; always a whole number of microseconds),
//! 5. `actor`, 6. `actor_kind` (UTF-8),
//! 7. `organization_id` (16 bytes),
//! 8. `action`, 9. `record_type` (UTF-8),
//! 10. `record_id` (16 bytes),
//! 11. `purpose`, 12. `request_id` (UTF-8),
//! 13. `outcome`: the byte `0x00` when absent, else `0x01` then its UTF-8 spelling,
//! 14. `previous_hash` (32 bytes),
//! 15. only when the entry records a service hop (`via`, see
//!     [`crate::AuditEntry::via`]): the tag `via`, then the service's subject (UTF-8),
//!
//! where each part is preceded by its length in bytes as 8 bytes big-endian. The
//! length prefixes make the encoding unambiguous: no two different entries encode to
//! the same bytes, however their text fields are split. Entries without a hop hash
//! exactly as before the hop was recorded, so older chains still verify. Enumerations are hashed in
//! their stored spelling (`user`, `not_found`).

use std::fmt;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

/// Identifies the encoding; a future change of fields gets a new tag.
const DOMAIN_TAG: &[u8] = b"haven-audit/v1";

/// A SHA-256 link of the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditHash([u8; 32]);

impl AuditHash {
    /// All zero: the `previous_hash` of the first entry, and the head of an empty
    /// chain.
    pub const ZERO: Self = Self([0; 32]);

    /// From raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// From a stored value; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// Parses 64 hexadecimal digits (as [`Display`](fmt::Display) writes them), e.g.
    /// a head hash an operator recorded earlier.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is [`AuditHash::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for AuditHash {
    /// 64 lowercase hexadecimal digits.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AuditHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "AuditHash({self})")
    }
}

/// Every hashed field of an entry, borrowed, in stored form. The verifier fills it
/// from raw rows so that an unknown spelling is hashed as stored, not rejected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HashedFields<'a> {
    pub sequence: i64,
    pub entry_id: Uuid,
    pub occurred_at: OffsetDateTime,
    pub actor: &'a str,
    pub actor_kind: &'a str,
    pub organization_id: Uuid,
    pub action: &'a str,
    pub record_type: &'a str,
    pub record_id: Uuid,
    pub purpose: &'a str,
    pub request_id: &'a str,
    pub outcome: Option<&'a str>,
    pub previous_hash: &'a [u8],
    pub via: Option<&'a str>,
}

/// The hash of an entry with these fields (see the [module docs](self)).
pub(crate) fn compute(fields: &HashedFields<'_>) -> AuditHash {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[&[u8]]| {
        let length: usize = bytes.iter().map(|piece| piece.len()).sum();
        hasher.update((length as u64).to_be_bytes());
        for piece in bytes {
            hasher.update(piece);
        }
    };
    part(&[DOMAIN_TAG]);
    part(&[&fields.sequence.to_be_bytes()]);
    part(&[fields.entry_id.as_bytes()]);
    part(&[&fields.occurred_at.unix_timestamp_nanos().to_be_bytes()]);
    part(&[fields.actor.as_bytes()]);
    part(&[fields.actor_kind.as_bytes()]);
    part(&[fields.organization_id.as_bytes()]);
    part(&[fields.action.as_bytes()]);
    part(&[fields.record_type.as_bytes()]);
    part(&[fields.record_id.as_bytes()]);
    part(&[fields.purpose.as_bytes()]);
    part(&[fields.request_id.as_bytes()]);
    match fields.outcome {
        None => part(&[&[0x00]]),
        Some(outcome) => part(&[&[0x01], outcome.as_bytes()]),
    }
    part(&[fields.previous_hash]);
    if let Some(via) = fields.via {
        part(&[b"via"]);
        part(&[via.as_bytes()]);
    }
    AuditHash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::{AuditHash, HashedFields, compute};

    fn sample() -> HashedFields<'static> {
        HashedFields {
            sequence: 42,
            entry_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            occurred_at: OffsetDateTime::from_unix_timestamp(1_767_225_600)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            actor: "user-7",
            actor_kind: "user",
            organization_id: Uuid::from_u128(2),
            action: "person.read",
            record_type: "person",
            record_id: Uuid::from_u128(3),
            purpose: "assistance",
            request_id: "req-1",
            outcome: Some("allowed"),
            previous_hash: &[7; 32],
            via: None,
        }
    }

    #[test]
    fn the_encoding_is_pinned() {
        // Computed independently from the documented encoding; a change here breaks
        // every stored chain and needs a new domain tag.
        assert_eq!(
            compute(&sample()).to_string(),
            "e06d2ee5aeae88c712cd48fbb83df5d8e737e3ab7c56383dfc99e4f6b5272230"
        );
    }

    #[test]
    fn moving_bytes_between_text_fields_changes_the_hash() {
        let split_one_way = HashedFields {
            actor: "ab",
            purpose: "c",
            ..sample()
        };
        let split_the_other = HashedFields {
            actor: "a",
            purpose: "bc",
            ..sample()
        };
        assert_ne!(compute(&split_one_way), compute(&split_the_other));
    }

    #[test]
    fn an_absent_outcome_differs_from_any_spelling() {
        let absent = HashedFields {
            outcome: None,
            ..sample()
        };
        let empty = HashedFields {
            outcome: Some(""),
            ..sample()
        };
        assert_ne!(compute(&absent), compute(&empty));
        assert_ne!(compute(&absent), compute(&sample()));
    }

    #[test]
    fn every_field_is_covered() {
        let base = compute(&sample());
        let other_id = Uuid::from_u128(99);
        let changed = [
            HashedFields {
                sequence: 43,
                ..sample()
            },
            HashedFields {
                entry_id: other_id,
                ..sample()
            },
            HashedFields {
                occurred_at: OffsetDateTime::UNIX_EPOCH,
                ..sample()
            },
            HashedFields {
                actor: "user-8",
                ..sample()
            },
            HashedFields {
                actor_kind: "service",
                ..sample()
            },
            HashedFields {
                organization_id: other_id,
                ..sample()
            },
            HashedFields {
                action: "person.update",
                ..sample()
            },
            HashedFields {
                record_type: "case",
                ..sample()
            },
            HashedFields {
                record_id: other_id,
                ..sample()
            },
            HashedFields {
                purpose: "audit",
                ..sample()
            },
            HashedFields {
                request_id: "req-2",
                ..sample()
            },
            HashedFields {
                outcome: Some("denied"),
                ..sample()
            },
            HashedFields {
                previous_hash: &[8; 32],
                ..sample()
            },
            HashedFields {
                via: Some("service:referral"),
                ..sample()
            },
        ];
        for fields in changed {
            assert_ne!(compute(&fields), base, "{fields:?}");
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_other_lengths() {
        let hash = compute(&sample());
        assert_eq!(AuditHash::from_hex(&hash.to_string()), Some(hash));
        assert_eq!(AuditHash::from_hex("abcd"), None);
        assert_eq!(AuditHash::from_slice(&[0; 31]), None);
        assert!(AuditHash::ZERO.is_zero());
    }
}
