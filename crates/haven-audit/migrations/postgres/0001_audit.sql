-- Append-only, hash-chained audit trail: one row per read or write of a person or
-- case, written in the same transaction as the operation. `sequence` is assigned
-- under a transaction-scoped advisory lock, so it grows in commit order without gaps.
-- Ids and codes only: never personal data.
CREATE TABLE audit_log (
    sequence        BIGINT PRIMARY KEY CHECK (sequence > 0),
    entry_id        UUID NOT NULL UNIQUE,
    occurred_at     TIMESTAMPTZ NOT NULL,
    actor           TEXT NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('user', 'service')),
    organization_id UUID NOT NULL,
    action          TEXT NOT NULL,
    record_type     TEXT NOT NULL,
    record_id       UUID NOT NULL,
    purpose         TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    outcome         TEXT CHECK (outcome IN ('allowed', 'denied', 'not_found')),
    previous_hash   BYTEA NOT NULL CHECK (octet_length(previous_hash) = 32),
    hash            BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);

-- "Who accessed this record", in order.
CREATE INDEX audit_log_by_record ON audit_log (record_type, record_id, sequence);

-- History is never rewritten by the application. A superuser or the table owner can
-- still disable these triggers: the hash chain is what detects that.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

-- Row triggers do not fire on TRUNCATE.
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
