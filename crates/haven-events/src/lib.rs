//! Events between services.
//!
//! - [`outbox`]: a service writes each domain event into its `outbox_events` table in
//!   the same transaction as the change ([`OutboxWrite::append_event`]).
//! - [`feed`]: the `WatchEvents` RPC streams committed events after a sequence, then
//!   follows new ones.
//! - [`fields`]: the class of every payload field of every event type, and what a
//!   person following a feed receives of a payload.
//! - [`consumer`]: follows another service's feed and applies each event exactly once,
//!   advancing a stored checkpoint in the same transaction as the projection
//!   ([`CheckpointWrite::advance_checkpoint`]).

pub mod consumer;
pub mod feed;
pub mod fields;
pub mod outbox;

pub use consumer::{EventSink, follow};
pub use feed::{EventFeed, EventSignal};
pub use outbox::{CheckpointWrite, NewEvent, OutboxWrite, REDACTED_PAYLOAD, is_redacted};

use haven_storage::MigrationSet;

/// The outbox and checkpoint tables every service database carries.
pub const MIGRATIONS: MigrationSet = MigrationSet {
    table: "_haven_events_migrations",
    sqlite: || sqlx::migrate!("migrations/sqlite"),
    postgres: || sqlx::migrate!("migrations/postgres"),
};
