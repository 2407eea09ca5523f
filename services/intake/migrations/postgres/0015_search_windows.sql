-- The duplicate-search limit counts per user in the database, not in one process's
-- memory, so it holds however many intake replicas answer: one row per user, the
-- start of the user's current window (Unix milliseconds) and the searches in it.
CREATE TABLE search_windows (
    subject    TEXT PRIMARY KEY,
    started_ms BIGINT NOT NULL,
    searches   BIGINT NOT NULL
);
