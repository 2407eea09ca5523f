-- A referral's free texts (purpose, status reason, outcome) are narrative about a
-- person: they are stored encrypted under a data key of the referral, wrapped by the
-- master keyring. Rows written before keep their plaintext (as UTF-8 bytes) until the
-- service encrypts them at start-up; `data_key` is NULL until then. Erasing the person
-- destroys the key (`shredded`), leaving the ciphertexts unreadable. SQLite cannot
-- change a column's type: the table is rebuilt (nothing references it).
CREATE TABLE referrals_encrypted (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   BLOB NOT NULL UNIQUE,
    case_id              BLOB NOT NULL,
    case_code            TEXT NOT NULL,
    screening_id         BLOB NOT NULL,
    from_organization_id BLOB NOT NULL,
    to_organization_id   BLOB NOT NULL,
    facility_id          BLOB NOT NULL REFERENCES facilities (id),
    service_type         TEXT NOT NULL,
    purpose              BLOB NOT NULL,
    urgency              TEXT NOT NULL,
    requested_by         TEXT NOT NULL,
    requested_at         TEXT NOT NULL,
    accept_by            TEXT NOT NULL,
    outcome_due_on       TEXT NOT NULL,
    status               TEXT NOT NULL,
    status_reason        BLOB NOT NULL DEFAULT x'',
    outcome              BLOB NOT NULL DEFAULT x'',
    capacity_reserved    BOOLEAN NOT NULL DEFAULT FALSE,
    version              INTEGER NOT NULL,
    updated_at           TEXT NOT NULL,
    data_key             BLOB,
    shredded             BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO referrals_encrypted (seq, id, case_id, case_code, screening_id, from_organization_id,
    to_organization_id, facility_id, service_type, purpose, urgency, requested_by, requested_at,
    accept_by, outcome_due_on, status, status_reason, outcome, capacity_reserved, version, updated_at)
SELECT seq, id, case_id, case_code, screening_id, from_organization_id, to_organization_id,
    facility_id, service_type, CAST(purpose AS BLOB), urgency, requested_by, requested_at,
    accept_by, outcome_due_on, status, CAST(status_reason AS BLOB), CAST(outcome AS BLOB),
    capacity_reserved, version, updated_at
FROM referrals;
DROP TABLE referrals;
ALTER TABLE referrals_encrypted RENAME TO referrals;
CREATE INDEX referrals_from ON referrals (from_organization_id, seq);
CREATE INDEX referrals_to ON referrals (to_organization_id, seq);
CREATE INDEX referrals_screening ON referrals (screening_id);
CREATE INDEX referrals_case ON referrals (case_id, seq);

-- Which person a screening records (from intake's `screening.created`), so that a
-- `person.erased` finds the person's referrals.
CREATE TABLE screening_persons (
    screening_id BLOB PRIMARY KEY,
    person_id    BLOB NOT NULL
);
CREATE INDEX screening_persons_person ON screening_persons (person_id);

-- Intake's feed is read again from the start to learn the screenings of people
-- already known (and to destroy the keys of people already erased); events up to
-- `until` were applied before and only teach that.
CREATE TABLE feed_replays (
    source TEXT PRIMARY KEY,
    until  BIGINT NOT NULL
);
INSERT INTO feed_replays (source, until)
    SELECT source, sequence FROM event_checkpoints WHERE source = 'intake' AND sequence > 0;
UPDATE event_checkpoints SET sequence = 0 WHERE source = 'intake';
