-- Transactional outbox: every state change writes its event here in the same
-- transaction. `sequence` is assigned under the write lock, so it grows in commit
-- order without gaps.
CREATE TABLE outbox_events (
    sequence        INTEGER PRIMARY KEY,
    event_id        BLOB NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    aggregate_id    BLOB NOT NULL,
    organization_id BLOB NOT NULL,
    payload         TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    trace_id        TEXT NOT NULL DEFAULT ''
);

-- Consumers' positions in other services' feeds, advanced in the same transaction
-- as the projection they feed.
CREATE TABLE event_checkpoints (
    source   TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL
);
