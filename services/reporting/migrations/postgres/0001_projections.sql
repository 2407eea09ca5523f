-- Projections built only from the other services' event feeds. No personal data:
-- ids, organisations and categories.
CREATE TABLE screenings (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    referral_source TEXT NOT NULL,
    stage           TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX screenings_organization ON screenings (organization_id);

CREATE TABLE cases (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL,
    status          TEXT NOT NULL,
    opened_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX cases_organization ON cases (organization_id);

CREATE TABLE organizations (
    id                UUID PRIMARY KEY,
    organization_type TEXT NOT NULL
);
