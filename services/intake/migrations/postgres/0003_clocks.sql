-- Statutory clocks, started by identification decisions as the deployment's
-- configuration says; one per screening and clock name.
CREATE TABLE clocks (
    seq             BIGSERIAL PRIMARY KEY,
    id              UUID NOT NULL UNIQUE,
    screening_id    UUID NOT NULL REFERENCES screenings (id),
    organization_id UUID NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    completed_by    TEXT,
    CONSTRAINT clocks_screening_name_key UNIQUE (screening_id, name)
);
CREATE INDEX clocks_open_by_due ON clocks (organization_id, due_at) WHERE completed_at IS NULL;
