-- Append-only, hash-chained audit trail: one row per read or write of a person or
-- case, written in the same transaction as the operation. `sequence` is assigned
-- under the write lock (`BEGIN IMMEDIATE`), so it grows in commit order without gaps.
-- Ids and codes only: never personal data.
CREATE TABLE audit_log (
    sequence        INTEGER PRIMARY KEY CHECK (sequence > 0),
    entry_id        BLOB NOT NULL UNIQUE,
    occurred_at     TEXT NOT NULL,
    actor           TEXT NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('user', 'service')),
    organization_id BLOB NOT NULL,
    action          TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_id       BLOB NOT NULL,
    purpose         TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outcome         TEXT CHECK (outcome IN ('allowed', 'denied', 'not_found')),
    previous_hash   BLOB NOT NULL CHECK (typeof(previous_hash) = 'blob' AND length(previous_hash) = 32),
    hash            BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32)
);

-- "Who accessed this record", in order.
CREATE INDEX audit_log_by_record ON audit_log (record_type, record_id, sequence);

-- History is never rewritten by the application. Someone with direct access to the
-- file can still drop these triggers: the hash chain is what detects that.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
