//! What the verifier found, worded for an operator.

use std::fmt;

use uuid::Uuid;

use crate::hash::AuditHash;

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every entry is intact and linked to the one before it.
    Ok {
        /// How many entries the chain holds.
        entries: u64,
        /// The hash of the last entry ([`AuditHash::ZERO`] for an empty chain).
        /// Record it somewhere the database's administrators cannot write, then
        /// check later with [`crate::verify_against`]: that is what detects the
        /// deletion of the newest entries.
        head_hash: AuditHash,
    },
    /// The first broken link. Entries before it are intact; nothing after it was
    /// checked.
    Broken {
        /// The sequence where the chain breaks: the altered, misplaced or unreadable
        /// entry, or the first missing one.
        sequence: i64,
        /// The stored entry at `sequence`; `None` when it is missing or unreadable.
        entry_id: Option<Uuid>,
        /// What is wrong.
        reason: BreakReason,
    },
    /// The chain is intact on its own but no longer holds the head recorded earlier:
    /// the entries up to that head were deleted (the chain was truncated) or
    /// rewritten with recomputed hashes, or the head came from another database.
    HeadMissing {
        /// The head hash that was recorded.
        recorded_head: AuditHash,
        /// How many entries the chain holds now.
        entries: u64,
        /// The hash of the chain's last entry now.
        head_hash: AuditHash,
    },
}

impl VerifyReport {
    /// Whether the chain verified.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

/// Why a link is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The stored hash does not match the entry's contents: a field was changed.
    Altered,
    /// Entries from the broken sequence up to `resumes_at - 1` are missing: deleted.
    Gap {
        /// The sequence of the next stored entry.
        resumes_at: i64,
    },
    /// The entry's `previous_hash` is not the hash of the entry before it: entries
    /// were reordered, or the entry before was rewritten together with its hash.
    Reordered,
    /// The first entry is not sequence 1 with an all-zero `previous_hash`.
    WrongStart,
    /// A stored value is missing or of the wrong type, so the entry cannot be read.
    Unreadable,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok { entries, head_hash } => write!(
                formatter,
                "audit chain intact: {entries} entries, head hash {head_hash}"
            ),
            Self::Broken {
                sequence,
                entry_id,
                reason,
            } => {
                write!(formatter, "audit chain broken at entry {sequence}")?;
                if let Some(entry_id) = entry_id {
                    write!(formatter, " ({entry_id})")?;
                }
                formatter.write_str(": ")?;
                describe(formatter, *sequence, *reason)
            }
            Self::HeadMissing {
                recorded_head,
                entries,
                head_hash,
            } => write!(
                formatter,
                "audit chain does not contain the recorded head {recorded_head}: entries up \
                 to it were deleted or rewritten — the chain now ends at entry {entries} \
                 (hash {head_hash})"
            ),
        }
    }
}

fn describe(formatter: &mut fmt::Formatter<'_>, sequence: i64, reason: BreakReason) -> fmt::Result {
    match reason {
        BreakReason::Altered => {
            formatter.write_str("entry altered — stored hash does not match its contents")
        }
        BreakReason::Gap { resumes_at } if resumes_at == sequence + 1 => write!(
            formatter,
            "entry deleted — entry {sequence} is missing, the chain resumes at entry {resumes_at}"
        ),
        BreakReason::Gap { resumes_at } => write!(
            formatter,
            "entries deleted — entries {sequence} to {} are missing, the chain resumes at \
             entry {resumes_at}",
            resumes_at - 1
        ),
        BreakReason::Reordered => formatter.write_str(
            "entries reordered — its previous hash is not the hash of the entry before it \
             (or that entry was rewritten together with its hash)",
        ),
        BreakReason::WrongStart => formatter.write_str(
            "wrong start — the first entry must be sequence 1 with an all-zero previous hash",
        ),
        BreakReason::Unreadable => formatter
            .write_str("entry unreadable — a stored value is missing or has the wrong type"),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::{BreakReason, VerifyReport};
    use crate::hash::AuditHash;

    #[test]
    fn reports_read_as_one_line_an_operator_can_act_on() {
        let entry_id = Uuid::from_u128(0x3f1c);
        let altered = VerifyReport::Broken {
            sequence: 42,
            entry_id: Some(entry_id),
            reason: BreakReason::Altered,
        };
        assert_eq!(
            altered.to_string(),
            format!(
                "audit chain broken at entry 42 ({entry_id}): entry altered — stored hash \
                 does not match its contents"
            )
        );
        let one_missing = VerifyReport::Broken {
            sequence: 42,
            entry_id: None,
            reason: BreakReason::Gap { resumes_at: 43 },
        };
        assert_eq!(
            one_missing.to_string(),
            "audit chain broken at entry 42: entry deleted — entry 42 is missing, the chain \
             resumes at entry 43"
        );
        let several_missing = VerifyReport::Broken {
            sequence: 42,
            entry_id: None,
            reason: BreakReason::Gap { resumes_at: 46 },
        };
        assert!(
            several_missing
                .to_string()
                .contains("entries 42 to 45 are missing")
        );
        let intact = VerifyReport::Ok {
            entries: 7,
            head_hash: AuditHash::ZERO,
        };
        assert!(intact.is_ok());
        assert!(
            intact
                .to_string()
                .starts_with("audit chain intact: 7 entries")
        );
        for report in [altered, one_missing, intact] {
            assert!(!report.to_string().contains('\n'));
        }
    }
}
