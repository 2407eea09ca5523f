-- Referral deadlines (for overdue counts) and the places held in facilities over time.
ALTER TABLE referrals ADD COLUMN accept_by_epoch INTEGER;
ALTER TABLE referrals ADD COLUMN outcome_due_on TEXT;
ALTER TABLE referrals ADD COLUMN facility_id BLOB;

-- +1 when an acceptance holds a place, -1 when it is released (one of each per
-- referral), by day (days since 1970-01-01).
CREATE TABLE occupancy_changes (
    referral_id BLOB NOT NULL,
    facility_id BLOB NOT NULL,
    delta       INTEGER NOT NULL,
    changed_day INTEGER NOT NULL,
    PRIMARY KEY (referral_id, delta)
);
CREATE INDEX occupancy_changes_day ON occupancy_changes (changed_day);
