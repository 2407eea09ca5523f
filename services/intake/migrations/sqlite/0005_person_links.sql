-- Confirmed matches: the same person recorded twice, usually because they were
-- trafficked again. Links are facts, kept even if a record is later erased.
CREATE TABLE person_links (
    person_id        BLOB NOT NULL REFERENCES persons (id),
    linked_person_id BLOB NOT NULL REFERENCES persons (id),
    screening_id     BLOB NOT NULL REFERENCES screenings (id),
    confirmed_by     TEXT NOT NULL,
    confirmed_at     TEXT NOT NULL,
    PRIMARY KEY (person_id, linked_person_id)
);

ALTER TABLE screenings ADD COLUMN re_trafficked BOOLEAN NOT NULL DEFAULT FALSE;
