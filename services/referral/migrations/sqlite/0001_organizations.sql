-- Directory of organisations that assist victims. Facilities, services and
-- referrals come in later migrations.
CREATE TABLE organizations (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                BLOB NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    organization_type TEXT NOT NULL,
    settlement        TEXT NOT NULL,
    active            BOOLEAN NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    version           BIGINT NOT NULL,
    CONSTRAINT organizations_name_key UNIQUE (name)
);
