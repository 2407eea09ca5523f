-- Idempotency keys of screening creation: a retried create returns the screening made
-- the first time. Only a hash of the request is kept, never the request.
CREATE TABLE screening_idempotency (
    organization_id BLOB NOT NULL,
    key             TEXT NOT NULL,
    request_hash    BLOB NOT NULL,
    screening_id    BLOB NOT NULL REFERENCES screenings (id),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, key)
);
