-- Accounts. Ids are UUIDs made by the application (16-byte BLOBs here); usernames and
-- emails are unique case-insensitively through their *_key columns.
CREATE TABLE users (
    id             BLOB PRIMARY KEY NOT NULL,
    username       TEXT NOT NULL,
    username_key   TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL,
    email_key      TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT,
    role           TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
