//! Behaviour of the audit trail, on SQLite and on Postgres.
//!
//! - [`append`]: appending inside transactions, concurrency, the append-only
//!   triggers, reading a record's entries.
//! - [`tamper`]: someone with database access bypasses the triggers; the verifier
//!   names the first broken link.
//! - [`heads`]: the signed head catches truncation and rehashing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod append;
mod heads;
mod support;
mod tamper;
