-- Cell-key perturbation: each counter also keeps the sum of the record keys of the
-- persons and cases it counts (a cell's key is that sum modulo 2^32). A record's key
-- comes from its id under the perturbation key of the keys directory, so a rebuild
-- gives every record the same key and every report the same published values.
ALTER TABLE indicator_counts ADD COLUMN ckey BIGINT NOT NULL DEFAULT 0;

-- Counters without keys cannot be perturbed: projections are derived data, emptied
-- here and rebuilt from the feeds.
DELETE FROM screenings;
DELETE FROM screening_labels;
DELETE FROM cases;
DELETE FROM organizations;
DELETE FROM case_services;
DELETE FROM payments;
DELETE FROM referrals;
DELETE FROM assessment_scores;
DELETE FROM follow_ups;
DELETE FROM occupancy_changes;
DELETE FROM indicator_counts;
DELETE FROM event_checkpoints;
