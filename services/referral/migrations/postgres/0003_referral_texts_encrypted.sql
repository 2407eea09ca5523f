-- A referral's free texts (purpose, status reason, outcome) are narrative about a
-- person: they are stored encrypted under a data key of the referral, wrapped by the
-- master keyring. Rows written before keep their plaintext (as UTF-8 bytes) until the
-- service encrypts them at start-up; `data_key` is NULL until then. Erasing the person
-- destroys the key (`shredded`), leaving the ciphertexts unreadable.
ALTER TABLE referrals ALTER COLUMN purpose TYPE BYTEA USING convert_to(purpose, 'UTF8');
ALTER TABLE referrals ALTER COLUMN status_reason DROP DEFAULT;
ALTER TABLE referrals ALTER COLUMN status_reason TYPE BYTEA USING convert_to(status_reason, 'UTF8');
ALTER TABLE referrals ALTER COLUMN status_reason SET DEFAULT ''::BYTEA;
ALTER TABLE referrals ALTER COLUMN outcome DROP DEFAULT;
ALTER TABLE referrals ALTER COLUMN outcome TYPE BYTEA USING convert_to(outcome, 'UTF8');
ALTER TABLE referrals ALTER COLUMN outcome SET DEFAULT ''::BYTEA;
ALTER TABLE referrals ADD COLUMN data_key BYTEA;
ALTER TABLE referrals ADD COLUMN shredded BOOLEAN NOT NULL DEFAULT FALSE;

-- Which person a screening records (from intake's `screening.created`), so that a
-- `person.erased` finds the person's referrals.
CREATE TABLE screening_persons (
    screening_id UUID PRIMARY KEY,
    person_id    UUID NOT NULL
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
