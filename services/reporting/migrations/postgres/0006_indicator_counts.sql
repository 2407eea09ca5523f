-- Indicator counters, kept up to date in the transaction that applies each event, so
-- a report reads a few thousand counters instead of scanning the projections. Each
-- person's and each case's contribution is counted under the day (grain 0, days
-- since 1970-01-01) and the month (grain 1, year * 12 + month - 1) of its screening
-- or opening, its organisation and its region. A report adds whole months and the
-- days at either end.
CREATE TABLE indicator_counts (
    grain           INTEGER NOT NULL,
    bucket          BIGINT NOT NULL,
    organization_id UUID NOT NULL,
    region          TEXT NOT NULL,
    indicator       TEXT NOT NULL,
    label           TEXT NOT NULL,
    sublabel        TEXT NOT NULL,
    n               BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, organization_id, region, indicator, label, sublabel)
);

-- The provider as text, so it can be a counter's label.
ALTER TABLE case_services ADD COLUMN provider TEXT NOT NULL DEFAULT '';

-- Projections are derived data: emptied here and rebuilt from the feeds.
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
DELETE FROM event_checkpoints;
