CREATE TABLE screenings (
    seq              BIGSERIAL PRIMARY KEY,
    id               UUID NOT NULL UNIQUE,
    organization_id  UUID NOT NULL,
    screened_by      TEXT NOT NULL,
    referral_source  TEXT NOT NULL,
    screened_at      TIMESTAMPTZ NOT NULL,
    settlement       TEXT NOT NULL,
    language         TEXT NOT NULL,
    interpreter_used BOOLEAN NOT NULL,
    is_minor         BOOLEAN NOT NULL,
    stage            TEXT NOT NULL,
    case_id          UUID,
    created_at       TIMESTAMPTZ NOT NULL,
    version          BIGINT NOT NULL
);
CREATE INDEX screenings_organization_seq ON screenings (organization_id, seq);
-- Screenings identified but still waiting for their case (retried until opened).
CREATE INDEX screenings_awaiting_case ON screenings (stage) WHERE case_id IS NULL;

-- Consent history: a withdrawal is a new row, never an update.
CREATE TABLE consents (
    seq          BIGSERIAL PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    screening_id UUID NOT NULL REFERENCES screenings (id),
    purpose      TEXT NOT NULL,
    given        BOOLEAN NOT NULL,
    method       TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_screening ON consents (screening_id, seq);

-- Identification decisions: a correction is a new decision, never an edit.
CREATE TABLE decisions (
    seq                        BIGSERIAL PRIMARY KEY,
    id                         UUID NOT NULL UNIQUE,
    screening_id               UUID NOT NULL REFERENCES screenings (id),
    stage                      TEXT NOT NULL,
    deciding_organization_type TEXT NOT NULL,
    legal_basis                TEXT NOT NULL,
    decided_at                 TIMESTAMPTZ NOT NULL,
    reasons                    TEXT NOT NULL,
    recorded_by                TEXT NOT NULL,
    recorded_at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX decisions_screening ON decisions (screening_id, seq);
