CREATE TABLE cases (
    seq             BIGSERIAL PRIMARY KEY,
    id              UUID NOT NULL UNIQUE,
    code            TEXT NOT NULL UNIQUE,
    organization_id UUID NOT NULL,
    screening_id    UUID NOT NULL,
    status          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL,
    version         BIGINT NOT NULL,
    CONSTRAINT cases_screening_id_key UNIQUE (screening_id)
);
CREATE INDEX cases_organization_seq ON cases (organization_id, seq);

-- Last number handed out per year, for pseudonymous codes like HV-2026-000123.
CREATE TABLE case_code_counters (
    year INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);
