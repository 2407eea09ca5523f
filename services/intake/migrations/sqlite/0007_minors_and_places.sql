-- Where a screening took place, and the guardian of a minor (personal data:
-- encrypted under the screening's key).
ALTER TABLE screenings ADD COLUMN latitude REAL;
ALTER TABLE screenings ADD COLUMN longitude REAL;
ALTER TABLE screenings ADD COLUMN guardian BLOB;

-- Who gave a consent (a minor's guardian), and which kinds of organisation a
-- data-sharing consent covers (comma-separated codes; empty = any).
ALTER TABLE consents ADD COLUMN by_guardian BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE consents ADD COLUMN organization_types TEXT NOT NULL DEFAULT '';
