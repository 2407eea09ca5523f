-- The deciding organisation itself, when it is in the directory.
ALTER TABLE decisions ADD COLUMN deciding_organization_id BLOB;
