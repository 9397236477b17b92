-- Accounts at external identity providers linked to local users: one row per (provider,
-- subject), the provider's subject being its stable user id. The email and whether the provider
-- said it was verified are kept as last seen, for the security page and for linking decisions.
CREATE TABLE IF NOT EXISTS external_identities (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ,
    CONSTRAINT external_identities_provider_subject_key UNIQUE (provider, subject)
);

CREATE INDEX IF NOT EXISTS external_identities_user_idx ON external_identities (user_id);
