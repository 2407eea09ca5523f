-- Idempotency keys of creates, written in the create's own transaction: a retry with
-- the same key and request finds the record the first request made, whatever died in
-- between. Only hashes of the key and of the request are kept, never the request.
CREATE TABLE idempotency_keys (
    organization_id BLOB NOT NULL,
    subject         TEXT NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    record_id       TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, subject, key)
);
