-- Facilities where organisations deliver services, and referrals of cases to them.
CREATE TABLE facilities (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              BLOB NOT NULL UNIQUE,
    organization_id BLOB NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    address         TEXT NOT NULL,
    settlement      TEXT NOT NULL,
    latitude        REAL NOT NULL,
    longitude       REAL NOT NULL,
    capacity_total  INTEGER NOT NULL,
    -- Never below zero, whatever the number of concurrent acceptances.
    capacity_free   INTEGER NOT NULL CHECK (capacity_free >= 0),
    accepts         TEXT NOT NULL,
    languages       TEXT NOT NULL,
    opening_hours   TEXT NOT NULL,
    contact_phone   TEXT NOT NULL,
    contact_email   TEXT NOT NULL,
    active          BOOLEAN NOT NULL,
    version         INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX facilities_organization ON facilities (organization_id, seq);
CREATE INDEX facilities_latitude ON facilities (latitude);

CREATE TABLE facility_services (
    facility_id  BLOB NOT NULL REFERENCES facilities (id),
    service_type TEXT NOT NULL,
    PRIMARY KEY (facility_id, service_type)
);
CREATE INDEX facility_services_type ON facility_services (service_type, facility_id);

CREATE TABLE referrals (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   BLOB NOT NULL UNIQUE,
    case_id              BLOB NOT NULL,
    case_code            TEXT NOT NULL,
    screening_id         BLOB NOT NULL,
    from_organization_id BLOB NOT NULL,
    to_organization_id   BLOB NOT NULL,
    facility_id          BLOB NOT NULL REFERENCES facilities (id),
    service_type         TEXT NOT NULL,
    purpose              TEXT NOT NULL,
    urgency              TEXT NOT NULL,
    requested_by         TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    accept_by            TEXT NOT NULL,
    outcome_due_on       TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_reason        TEXT NOT NULL DEFAULT '',
    outcome              TEXT NOT NULL DEFAULT '',
    capacity_reserved    BOOLEAN NOT NULL DEFAULT FALSE,
    version              INTEGER NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX referrals_from ON referrals (from_organization_id, seq);
CREATE INDEX referrals_to ON referrals (to_organization_id, seq);
CREATE INDEX referrals_screening ON referrals (screening_id);
CREATE INDEX referrals_case ON referrals (case_id, seq);
