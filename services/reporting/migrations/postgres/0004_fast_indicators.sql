-- Faster indicators: multi-valued categories in their own rows, times as epoch
-- seconds (durations become integer arithmetic), and indexes for the scopes.
-- Projections are derived data: they are emptied here and rebuilt from the feeds
-- when the service starts.
CREATE TABLE screening_labels (
    screening_id UUID NOT NULL,
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (screening_id, kind, value)
);
CREATE INDEX screening_labels_kind ON screening_labels (kind, value);

ALTER TABLE screenings ADD COLUMN created_epoch BIGINT;
ALTER TABLE screenings ADD COLUMN identified_epoch BIGINT;
ALTER TABLE cases ADD COLUMN first_service_epoch BIGINT;
ALTER TABLE referrals ADD COLUMN requested_epoch BIGINT;
ALTER TABLE referrals ADD COLUMN accepted_epoch BIGINT;

CREATE INDEX screenings_scope ON screenings (organization_id, created_at);
CREATE INDEX screenings_stage ON screenings (stage);
CREATE INDEX cases_scope ON cases (organization_id, opened_at);
CREATE INDEX cases_screening ON cases (screening_id);
CREATE INDEX referrals_case ON referrals (case_id);

DELETE FROM screenings;
DELETE FROM cases;
DELETE FROM organizations;
DELETE FROM case_services;
DELETE FROM payments;
DELETE FROM referrals;
DELETE FROM assessment_scores;
DELETE FROM follow_ups;
DELETE FROM event_checkpoints;
