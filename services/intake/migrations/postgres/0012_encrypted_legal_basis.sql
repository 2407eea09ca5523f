-- The legal basis of a decision is typed free text: from now on it is stored only
-- encrypted under the screening's key, like the reasons. The plain column stays for
-- decisions recorded before, and is empty for new ones.
ALTER TABLE decisions ADD COLUMN legal_basis_ciphertext BYTEA;
