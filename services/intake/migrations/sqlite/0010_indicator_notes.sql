-- Notes on indicator answers are narrative: encrypted under the screening's key.
ALTER TABLE screenings ADD COLUMN indicator_notes BLOB;
