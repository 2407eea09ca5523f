-- Idempotency-Key records of the REST gateway: one per (caller, key), kept 24 hours.
-- The request itself is never stored (it may carry personal data), only its SHA-256.
CREATE TABLE idempotency_records (
    organization_id UUID NOT NULL,
    subject         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    claim_id        UUID NOT NULL,
    method          TEXT NOT NULL,
    route           TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status          INTEGER,
    content_type    TEXT,
    location        TEXT,
    etag            TEXT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, subject, idempotency_key),
    CHECK ((state = 'completed') = (status IS NOT NULL AND response_body IS NOT NULL))
);

CREATE INDEX idempotency_records_created_at ON idempotency_records (created_at);
