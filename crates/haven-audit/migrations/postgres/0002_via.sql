-- The service a user's request passed through (`service:referral`) when the entry
-- names that user rather than the calling service; NULL for a direct call. Hashed
-- only when set, so entries written before keep their hashes.
ALTER TABLE audit_log ADD COLUMN via TEXT;
