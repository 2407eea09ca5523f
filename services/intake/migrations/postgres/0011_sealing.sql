-- Sealing follows the case: when the case service seals a case, its screenings and
-- their person are sealed with it and hidden from everyone who may not read sealed
-- cases. Sealed cases are remembered, so a screening linked to one later is sealed too.
CREATE TABLE sealed_cases (
    case_id   UUID PRIMARY KEY,
    sealed_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE screenings ADD COLUMN sealed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE persons ADD COLUMN sealed BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX screenings_case ON screenings (case_id) WHERE case_id IS NOT NULL;
