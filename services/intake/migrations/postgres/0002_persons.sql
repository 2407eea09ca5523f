-- Persons. Personal data is stored only as AEAD ciphertext, field by field, under the
-- person's own data key; the associated data binds each value to its table, column
-- and row. Erasure destroys the wrapped key (crypto-shredding): the ciphertext left
-- behind can no longer be read, even with the master key.
CREATE TABLE persons (
    seq                      BIGSERIAL PRIMARY KEY,
    id                       UUID NOT NULL UNIQUE,
    code                     TEXT NOT NULL UNIQUE,
    organization_id          UUID NOT NULL,
    wrapped_key              BYTEA,
    given_name               BYTEA,
    family_name              BYTEA,
    patronymic               BYTEA,
    birth_date               BYTEA,
    phone                    BYTEA,
    address                  BYTEA,
    identity_document_number BYTEA,
    -- Categorical, for statistics: not identifying on their own.
    birth_year               INTEGER,
    gender                   TEXT NOT NULL,
    citizenships             TEXT NOT NULL,
    languages                TEXT NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL,
    erased_at                TIMESTAMPTZ,
    erasure_reason           TEXT,
    version                  BIGINT NOT NULL
);
CREATE INDEX persons_organization ON persons (organization_id, seq);

-- Keyed blind indexes over normalised names and birth year: duplicate search without
-- storing or revealing a name.
CREATE TABLE person_blind_index (
    person_id UUID NOT NULL REFERENCES persons (id),
    kind      INTEGER NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (person_id, kind, value)
);
CREATE INDEX person_blind_index_value ON person_blind_index (value);

CREATE TABLE person_code_counters (
    year INTEGER PRIMARY KEY,
    last BIGINT NOT NULL
);

ALTER TABLE screenings ADD COLUMN person_id UUID REFERENCES persons (id);
