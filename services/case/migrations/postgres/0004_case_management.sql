-- Case management: risk and flags, caseworkers, closure and reopening, transfers,
-- reintegration plans, services, the cash ledger, follow-ups and notes.
ALTER TABLE cases ADD COLUMN risk_level TEXT;
ALTER TABLE cases ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
-- Subjects of the assigned caseworkers (JSON), mirrored in case_caseworkers for filters.
ALTER TABLE cases ADD COLUMN caseworkers TEXT NOT NULL DEFAULT '[]';
-- The closure requested or decided last; cleared when the case is reopened.
ALTER TABLE cases ADD COLUMN closure_id UUID;
-- The case's data key (wrapped) for notes and plans; created when first needed,
-- destroyed when the person is erased (`shredded` is then set).
ALTER TABLE cases ADD COLUMN data_key BYTEA;
ALTER TABLE cases ADD COLUMN shredded BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX cases_status_seq ON cases (status, seq);
CREATE INDEX cases_stage_seq ON cases (stage, seq);
CREATE INDEX cases_risk_seq ON cases (risk_level, seq);
CREATE INDEX cases_person ON cases (person_id);

CREATE TABLE case_caseworkers (
    case_id UUID NOT NULL REFERENCES cases (id),
    subject TEXT NOT NULL,
    PRIMARY KEY (case_id, subject)
);
CREATE INDEX case_caseworkers_subject ON case_caseworkers (subject, case_id);

CREATE TABLE closures (
    seq             BIGSERIAL PRIMARY KEY,
    id              UUID NOT NULL UNIQUE,
    case_id         UUID NOT NULL REFERENCES cases (id),
    reason          TEXT NOT NULL,
    reason_text     TEXT NOT NULL DEFAULT '',
    override_reason TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    requested_by    TEXT NOT NULL,
    requested_at    TIMESTAMPTZ NOT NULL,
    reviewed_by     TEXT NOT NULL DEFAULT '',
    reviewed_at     TIMESTAMPTZ,
    review_comment  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX closures_case ON closures (case_id, seq);

CREATE TABLE reopenings (
    seq         BIGSERIAL PRIMARY KEY,
    case_id     UUID NOT NULL REFERENCES cases (id),
    reason      TEXT NOT NULL,
    reopened_by TEXT NOT NULL,
    reopened_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE transfers (
    seq                  BIGSERIAL PRIMARY KEY,
    id                   UUID NOT NULL UNIQUE,
    case_id              UUID NOT NULL REFERENCES cases (id),
    from_organization_id UUID NOT NULL,
    to_organization_id   UUID NOT NULL,
    reason               TEXT NOT NULL,
    status               TEXT NOT NULL,
    requested_by         TEXT NOT NULL,
    requested_at         TIMESTAMPTZ NOT NULL,
    decided_by           TEXT NOT NULL DEFAULT '',
    decided_at           TIMESTAMPTZ,
    decision_comment     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX transfers_case ON transfers (case_id, seq);
CREATE INDEX transfers_to ON transfers (to_organization_id, seq);
CREATE INDEX transfers_from ON transfers (from_organization_id, seq);
-- At most one transfer of a case waits for a decision.
CREATE UNIQUE INDEX transfers_one_pending ON transfers (case_id) WHERE status = 'requested';

CREATE TABLE plans (
    seq            BIGSERIAL PRIMARY KEY,
    case_id        UUID NOT NULL REFERENCES cases (id),
    plan_version   INTEGER NOT NULL,
    -- Goals and actions (JSON), encrypted under the case's data key.
    content        BYTEA NOT NULL,
    status         TEXT NOT NULL,
    submitted_by   TEXT NOT NULL,
    submitted_at   TIMESTAMPTZ NOT NULL,
    reviewed_by    TEXT NOT NULL DEFAULT '',
    reviewed_at    TIMESTAMPTZ,
    review_comment TEXT NOT NULL DEFAULT '',
    version        BIGINT NOT NULL,
    CONSTRAINT plans_case_version_key UNIQUE (case_id, plan_version)
);

-- The trackable part of plan actions (the descriptions are in the encrypted plan).
-- `active` marks the actions of the case's approved plan.
CREATE TABLE plan_actions (
    id           UUID PRIMARY KEY,
    case_id      UUID NOT NULL REFERENCES cases (id),
    plan_version INTEGER NOT NULL,
    due_on       TEXT NOT NULL,
    status       TEXT NOT NULL,
    active       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX plan_actions_case ON plan_actions (case_id, plan_version);
CREATE INDEX plan_actions_open_due ON plan_actions (case_id, due_on) WHERE active;

CREATE TABLE case_services (
    seq                      BIGSERIAL PRIMARY KEY,
    id                       UUID NOT NULL UNIQUE,
    case_id                  UUID NOT NULL REFERENCES cases (id),
    service_type             TEXT NOT NULL,
    provider_organization_id UUID NOT NULL,
    planned_on               TEXT,
    started_on               TEXT,
    ended_on                 TEXT,
    status                   TEXT NOT NULL,
    version                  BIGINT NOT NULL,
    recorded_at              TIMESTAMPTZ NOT NULL,
    recorded_by              TEXT NOT NULL
);
CREATE INDEX case_services_case ON case_services (case_id, seq);

-- The cash-assistance ledger: append-only, corrected by reversals.
CREATE TABLE payments (
    seq                 BIGSERIAL PRIMARY KEY,
    id                  UUID NOT NULL UNIQUE,
    case_id             UUID NOT NULL REFERENCES cases (id),
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    paid_on             TEXT NOT NULL,
    purpose             TEXT NOT NULL,
    service_id          UUID,
    reverses_payment_id UUID UNIQUE,
    recorded_at         TIMESTAMPTZ NOT NULL,
    recorded_by         TEXT NOT NULL
);
CREATE INDEX payments_case ON payments (case_id, seq);

CREATE TABLE follow_ups (
    seq         BIGSERIAL PRIMARY KEY,
    id          UUID NOT NULL UNIQUE,
    case_id     UUID NOT NULL REFERENCES cases (id),
    kind        TEXT NOT NULL,
    due_on      TEXT NOT NULL,
    assigned_to TEXT NOT NULL,
    outcome     TEXT,
    done_at     TIMESTAMPTZ,
    version     BIGINT NOT NULL
);
CREATE INDEX follow_ups_case ON follow_ups (case_id, seq);
CREATE INDEX follow_ups_open_due ON follow_ups (case_id, due_on) WHERE outcome IS NULL;
CREATE INDEX follow_ups_assigned ON follow_ups (assigned_to, seq);

-- Narrative notes, encrypted under the case's data key.
CREATE TABLE notes (
    seq        BIGSERIAL PRIMARY KEY,
    id         UUID NOT NULL UNIQUE,
    case_id    UUID NOT NULL REFERENCES cases (id),
    visibility TEXT NOT NULL,
    body       BYTEA NOT NULL,
    written_by TEXT NOT NULL,
    written_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notes_case ON notes (case_id, seq);
