-- A legal decision can seal a case: then only admins and auditors read it.
ALTER TABLE cases ADD COLUMN sealed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cases ADD COLUMN sealed_basis TEXT;
-- The person the case is about (id only; personal data stays encrypted in intake).
ALTER TABLE cases ADD COLUMN person_id UUID;
