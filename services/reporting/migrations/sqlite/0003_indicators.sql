-- Categories for indicators and the anonymised export (coarse, no personal data:
-- sex, age band, citizenship, exploitation, region), and the facts of cases,
-- services, payments, referrals, assessments and follow-ups.
ALTER TABLE screenings ADD COLUMN gender TEXT;
ALTER TABLE screenings ADD COLUMN age_band TEXT;
ALTER TABLE screenings ADD COLUMN is_minor BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE screenings ADD COLUMN citizenship TEXT;
ALTER TABLE screenings ADD COLUMN exploitation_types TEXT NOT NULL DEFAULT '';
ALTER TABLE screenings ADD COLUMN means_of_control TEXT NOT NULL DEFAULT '';
ALTER TABLE screenings ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE screenings ADD COLUMN presumed_at TEXT;
ALTER TABLE screenings ADD COLUMN identified_at TEXT;
-- The newest answer on consent to reporting (NULL: never asked).
ALTER TABLE screenings ADD COLUMN reporting_consent BOOLEAN;
ALTER TABLE screenings ADD COLUMN case_id BLOB;

ALTER TABLE cases ADD COLUMN screening_id BLOB;
ALTER TABLE cases ADD COLUMN stage TEXT NOT NULL DEFAULT 'new';
ALTER TABLE cases ADD COLUMN closure_reason TEXT;
ALTER TABLE cases ADD COLUMN first_service_at TEXT;

CREATE TABLE case_services (
    id           BLOB PRIMARY KEY,
    case_id      BLOB NOT NULL,
    service_type TEXT NOT NULL,
    provider_id  BLOB NOT NULL,
    status       TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX case_services_case ON case_services (case_id);

CREATE TABLE payments (
    id           BLOB PRIMARY KEY,
    case_id      BLOB NOT NULL,
    currency     TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX payments_case ON payments (case_id);

CREATE TABLE referrals (
    id                   BLOB PRIMARY KEY,
    case_id              BLOB NOT NULL,
    from_organization_id BLOB NOT NULL,
    to_organization_id   BLOB NOT NULL,
    service_type         TEXT NOT NULL,
    status               TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    accepted_at          TEXT
);
CREATE INDEX referrals_from ON referrals (from_organization_id);

CREATE TABLE assessment_scores (
    case_id      BLOB NOT NULL,
    domain       TEXT NOT NULL,
    first_score  INTEGER NOT NULL,
    latest_score INTEGER NOT NULL,
    assessments  INTEGER NOT NULL,
    PRIMARY KEY (case_id, domain)
);

CREATE TABLE follow_ups (
    id      BLOB PRIMARY KEY,
    case_id BLOB NOT NULL,
    due_on  TEXT NOT NULL,
    done    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX follow_ups_case ON follow_ups (case_id);

-- Every export published: who, when, with which parameters, how many rows, and a
-- hash of the file.
CREATE TABLE releases (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    parameters      TEXT NOT NULL,
    row_count       INTEGER NOT NULL,
    withheld        INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    released_by     TEXT NOT NULL,
    organization_id BLOB NOT NULL,
    released_at     TEXT NOT NULL
);
