-- The reason given for an erasure is typed free text and may name people: it is
-- stored only encrypted, under a key of its own (wrapped by the master key) that the
-- erasure does not destroy. The plain column stays for erasures recorded before.
ALTER TABLE persons ADD COLUMN erasure_key BYTEA;
ALTER TABLE persons ADD COLUMN erasure_reason_ciphertext BYTEA;
