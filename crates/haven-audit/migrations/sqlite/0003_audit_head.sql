-- The signed head of the chain: its last sequence and hash when a service last signed
-- it, with an HMAC tag under a key kept outside the database (`keys/audit-head.key`).
-- One row, only ever moved forward. Deleting the newest entries or rehashing the
-- chain no longer matches it, and it cannot be re-signed without the key.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    sequence  INTEGER NOT NULL CHECK (sequence > 0),
    hash      BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),
    signed_at TEXT NOT NULL,
    tag       BLOB NOT NULL CHECK (typeof(tag) = 'blob' AND length(tag) = 32)
);
