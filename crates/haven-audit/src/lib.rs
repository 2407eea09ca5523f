//! The audit trail: who read or changed which person or case, when, and why.
//!
//! Every read or write of a person or case appends one [`AuditEntry`] to the
//! service's `audit_log` table **in the same transaction** as the operation
//! ([`AuditWrite::append_audit`]): if the entry cannot be written, the operation
//! fails with it. Entries carry ids and codes only, never personal data.
//!
//! - [`mod@entry`]: what an entry holds.
//! - [`mod@hash`]: the chain. Each entry stores the hash of the entry before it and a
//!   SHA-256 over its own canonical encoding, so changing, deleting or reordering a
//!   stored entry breaks the chain at that entry.
//! - [`mod@write`]: appending, inside the caller's transaction.
//! - [`mod@keys`]: the only way to decrypt a record: [`AuditedKeys::open`] takes the
//!   [`Receipt`] that appending an entry about that record returns.
//! - [`mod@read`]: the entries about one record ("who accessed this person").
//! - [`mod@verify`]: walks the whole chain and names the first broken link
//!   ([`VerifyReport`]).
//! - [`mod@head`]: the head signed under a key the database does not hold, which
//!   catches truncation and rehashing ([`HeadReport`]); [`HeadSigner`] keeps it
//!   signed, [`verify_signed`] checks chain and head together.
//!
//! `audit_log` refuses UPDATE, DELETE (and on Postgres TRUNCATE) through triggers,
//! so an application bug cannot rewrite history. Someone with direct database access
//! can bypass the triggers; the verifier, with the signed head, is what detects that.

#[macro_use]
mod dispatch;

pub mod context;
pub mod entry;
pub mod hash;
pub mod head;
pub mod keys;
pub mod read;
pub mod refusals;
pub mod report;
pub mod signer;
pub mod verify;
pub mod write;

mod row;
mod validation;

pub use context::AuditContext;
pub use entry::{ActorKind, AuditEntry, NewAuditEntry, Outcome};
pub use hash::AuditHash;
pub use head::{HEAD_KEY_FILE, HeadReport, SignOutcome, SignedHead, check_head, sign_head};
pub use keys::{AuditedKeys, OpenedKey, Receipt, SealingKey};
pub use read::entries_for_record;
pub use refusals::RefusalRecorder;
pub use report::{BreakReason, VerifyReport};
pub use signer::HeadSigner;
pub use verify::{SignedReport, holds_audit_log, verify, verify_against, verify_signed};
pub use write::{AuditWrite, append};

use haven_storage::MigrationSet;

/// The `audit_log` table every service database that holds people or cases carries.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_haven_audit_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};
