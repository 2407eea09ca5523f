-- Directory of organisations that assist victims. Facilities, services and
-- referrals come in later migrations.
CREATE TABLE organizations (
    seq               BIGSERIAL PRIMARY KEY,
    id                UUID NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    organization_type TEXT NOT NULL,
    settlement        TEXT NOT NULL,
    active            BOOLEAN NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    version           BIGINT NOT NULL,
    CONSTRAINT organizations_name_key UNIQUE (name)
);
