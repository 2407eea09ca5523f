-- Erasure redacts every event about a person's aggregates: find them without a scan.
CREATE INDEX outbox_events_aggregate ON outbox_events (aggregate_id);
