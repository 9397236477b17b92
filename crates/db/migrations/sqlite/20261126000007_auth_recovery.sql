-- Email verification and password reset: single-use links kept only as the SHA-256 of their
-- token, with the address they were sent to and an expiry. OAuth clients may ask for RS256 ID
-- tokens. The admin audit view lists every event by time.
CREATE TABLE IF NOT EXISTS email_tokens (
    id         BLOB PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email      TEXT NOT NULL,
    return_to  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS email_tokens_user ON email_tokens (user_id, purpose);

ALTER TABLE oauth_clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'ES256'
    CHECK (id_token_signed_response_alg IN ('ES256', 'RS256'));

CREATE INDEX IF NOT EXISTS audit_events_created ON audit_events (created_at);
