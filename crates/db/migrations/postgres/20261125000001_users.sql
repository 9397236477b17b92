-- Accounts. Ids are UUIDs made by the application (no sequences: CockroachDB hotspots);
-- usernames and emails are unique case-insensitively through their *_key columns.
CREATE TABLE IF NOT EXISTS users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL,
    username_key   TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT,
    role           TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
