-- Statutory clocks, started by identification decisions as the deployment's
-- configuration says; one per screening and clock name.
CREATE TABLE clocks (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    screening_id    BLOB NOT NULL REFERENCES screenings (id),
    organization_id BLOB NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    completed_at    TEXT,
    completed_by    TEXT,
    CONSTRAINT clocks_screening_name_key UNIQUE (screening_id, name)
);
CREATE INDEX clocks_open_by_due ON clocks (organization_id, due_at) WHERE completed_at IS NULL;
