-- Idempotency keys of creates, written in the create's own transaction: a retry with
-- the same key and request finds the record the first request made, whatever died in
-- between. Only hashes of the key and of the request are kept, never the request.
CREATE TABLE idempotency_keys (
    organization_id UUID NOT NULL,
    subject         TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    record_id       TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, subject, key)
);
