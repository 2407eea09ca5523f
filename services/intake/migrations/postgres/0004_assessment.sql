-- Indicator sets are data: each published version is a row, never edited.
CREATE TABLE indicator_sets (
    version      INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    published_by TEXT NOT NULL
);

-- The assessment parts of a screening, categorical only (JSON documents).
ALTER TABLE screenings ADD COLUMN indicator_set_version INTEGER REFERENCES indicator_sets (version);
ALTER TABLE screenings ADD COLUMN indicator_answers TEXT;
ALTER TABLE screenings ADD COLUMN exploitation TEXT;
ALTER TABLE screenings ADD COLUMN risk TEXT;
