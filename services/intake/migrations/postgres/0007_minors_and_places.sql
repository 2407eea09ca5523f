-- Where a screening took place, and the guardian of a minor (personal data:
-- encrypted under the screening's key).
ALTER TABLE screenings ADD COLUMN latitude DOUBLE PRECISION;
ALTER TABLE screenings ADD COLUMN longitude DOUBLE PRECISION;
ALTER TABLE screenings ADD COLUMN guardian BYTEA;

-- Who gave a consent (a minor's guardian), and which kinds of organisation a
-- data-sharing consent covers (comma-separated codes; empty = any).
ALTER TABLE consents ADD COLUMN by_guardian BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE consents ADD COLUMN organization_types TEXT NOT NULL DEFAULT '';
