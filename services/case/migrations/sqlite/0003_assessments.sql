-- Needs assessments, repeatable: scores by domain over time are the outcome measure.
CREATE TABLE assessments (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB NOT NULL UNIQUE,
    case_id      BLOB NOT NULL REFERENCES cases (id),
    kind         TEXT NOT NULL,
    scores       TEXT NOT NULL,
    assessed_at  TEXT NOT NULL,
    assessed_by  TEXT NOT NULL
);
CREATE INDEX assessments_case ON assessments (case_id, seq);
