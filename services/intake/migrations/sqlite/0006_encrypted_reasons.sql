-- Decision reasons are narrative and may name people: from now on they are stored
-- only encrypted, under a data key of the screening (wrapped by the master key and
-- destroyed when the screened person is erased). The old plain column stays for
-- decisions recorded before, and is empty for new ones.
ALTER TABLE screenings ADD COLUMN wrapped_key BLOB;
ALTER TABLE decisions ADD COLUMN reasons_ciphertext BLOB;
