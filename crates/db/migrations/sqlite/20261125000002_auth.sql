-- The auth service: OAuth clients, SSO login sessions, refresh tokens (rotated, grouped in
-- families for reuse detection), remembered consents and the security audit log.
CREATE TABLE IF NOT EXISTS oauth_clients (
    id                        BLOB PRIMARY KEY NOT NULL,
    client_id                 TEXT NOT NULL UNIQUE,
    secret_hash               TEXT,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    first_party               INTEGER NOT NULL CHECK (first_party IN (0, 1)),
    created_at                TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS auth_sessions (
    id           BLOB PRIMARY KEY NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE IF NOT EXISTS refresh_tokens (
    id         BLOB PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    family_id  BLOB NOT NULL,
    session_id BLOB NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE IF NOT EXISTS consents (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE TABLE IF NOT EXISTS audit_events (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB,
    event      TEXT NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    detail     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_events_user ON audit_events (user_id, created_at);
