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
ALTER TABLE screenings ADD COLUMN presumed_at TIMESTAMPTZ;
ALTER TABLE screenings ADD COLUMN identified_at TIMESTAMPTZ;
-- The newest answer on consent to reporting (NULL: never asked).
ALTER TABLE screenings ADD COLUMN reporting_consent BOOLEAN;
ALTER TABLE screenings ADD COLUMN case_id UUID;

ALTER TABLE cases ADD COLUMN screening_id UUID;
ALTER TABLE cases ADD COLUMN stage TEXT NOT NULL DEFAULT 'new';
ALTER TABLE cases ADD COLUMN closure_reason TEXT;
ALTER TABLE cases ADD COLUMN first_service_at TIMESTAMPTZ;

CREATE TABLE case_services (
    id           UUID PRIMARY KEY,
    case_id      UUID NOT NULL,
    service_type TEXT NOT NULL,
    provider_id  UUID NOT NULL,
    status       TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX case_services_case ON case_services (case_id);

CREATE TABLE payments (
    id           UUID PRIMARY KEY,
    case_id      UUID NOT NULL,
    currency     TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_case ON payments (case_id);

CREATE TABLE referrals (
    id                   UUID PRIMARY KEY,
    case_id              UUID NOT NULL,
    from_organization_id UUID NOT NULL,
    to_organization_id   UUID NOT NULL,
    service_type         TEXT NOT NULL,
    status               TEXT NOT NULL,
    requested_at         TIMESTAMPTZ NOT NULL,
    accepted_at          TIMESTAMPTZ
);
CREATE INDEX referrals_from ON referrals (from_organization_id);

CREATE TABLE assessment_scores (
    case_id      UUID NOT NULL,
    domain       TEXT NOT NULL,
    first_score  INTEGER NOT NULL,
    latest_score INTEGER NOT NULL,
    assessments  INTEGER NOT NULL,
    PRIMARY KEY (case_id, domain)
);

CREATE TABLE follow_ups (
    id      UUID PRIMARY KEY,
    case_id UUID NOT NULL,
    due_on  TEXT NOT NULL,
    done    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX follow_ups_case ON follow_ups (case_id);

-- Every export published: who, when, with which parameters, how many rows, and a
-- hash of the file.
CREATE TABLE releases (
    seq             BIGSERIAL PRIMARY KEY,
    id              UUID NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    parameters      TEXT NOT NULL,
    row_count       BIGINT NOT NULL,
    withheld        BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    released_by     TEXT NOT NULL,
    organization_id UUID NOT NULL,
    released_at     TIMESTAMPTZ NOT NULL
);
