-- Free texts about a case (reasons, comments, purposes) are encrypted under the
-- case's data key, like notes. The plaintext columns stay for rows written before:
-- the service encrypts those once at start-up (the key is not available here) and
-- empties the plaintext; new rows leave them empty.
ALTER TABLE cases ADD COLUMN sealed_basis_encrypted BLOB;
ALTER TABLE closures ADD COLUMN reason_text_encrypted BLOB;
ALTER TABLE closures ADD COLUMN override_reason_encrypted BLOB;
ALTER TABLE closures ADD COLUMN review_comment_encrypted BLOB;
ALTER TABLE transfers ADD COLUMN reason_encrypted BLOB;
ALTER TABLE transfers ADD COLUMN decision_comment_encrypted BLOB;
ALTER TABLE plans ADD COLUMN review_comment_encrypted BLOB;
ALTER TABLE reopenings ADD COLUMN reason_encrypted BLOB;
ALTER TABLE payments ADD COLUMN purpose_encrypted BLOB;
