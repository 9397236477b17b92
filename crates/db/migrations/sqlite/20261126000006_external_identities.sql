-- Accounts at external identity providers linked to local users: one row per (provider,
-- subject), the provider's subject being its stable user id. The email and whether the provider
-- said it was verified are kept as last seen, for the security page and for linking decisions.
CREATE TABLE IF NOT EXISTS external_identities (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    subject        TEXT NOT NULL,
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at     TEXT NOT NULL,
    last_login_at  TEXT,
    CONSTRAINT external_identities_provider_subject_key UNIQUE (provider, subject)
) STRICT;

CREATE INDEX IF NOT EXISTS external_identities_user_idx ON external_identities (user_id);
