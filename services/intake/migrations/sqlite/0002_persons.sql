-- Persons. Personal data is stored only as AEAD ciphertext, field by field, under the
-- person's own data key; the associated data binds each value to its table, column
-- and row. Erasure destroys the wrapped key (crypto-shredding): the ciphertext left
-- behind can no longer be read, even with the master key.
CREATE TABLE persons (
    seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
    id                       BLOB NOT NULL UNIQUE,
    code                     TEXT NOT NULL UNIQUE,
    organization_id          BLOB NOT NULL,
    wrapped_key              BLOB,
    given_name               BLOB,
    family_name              BLOB,
    patronymic               BLOB,
    birth_date               BLOB,
    phone                    BLOB,
    address                  BLOB,
    identity_document_number BLOB,
    -- Categorical, for statistics: not identifying on their own.
    birth_year               INTEGER,
    gender                   TEXT NOT NULL,
    citizenships             TEXT NOT NULL,
    languages                TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    erased_at                TEXT,
    erasure_reason           TEXT,
    version                  BIGINT NOT NULL
);
CREATE INDEX persons_organization ON persons (organization_id, seq);

-- Keyed blind indexes over normalised names and birth year: duplicate search without
-- storing or revealing a name.
CREATE TABLE person_blind_index (
    person_id BLOB NOT NULL REFERENCES persons (id),
    kind      INTEGER NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (person_id, kind, value)
);
CREATE INDEX person_blind_index_value ON person_blind_index (value);

CREATE TABLE person_code_counters (
    year INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);

ALTER TABLE screenings ADD COLUMN person_id BLOB REFERENCES persons (id);
