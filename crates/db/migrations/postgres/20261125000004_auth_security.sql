-- Second factor: one TOTP secret per user (pending until confirmed with a code, enabled_at then
-- set), the last step used (a code is never accepted twice), and single-use recovery codes
-- kept only as hashes.
CREATE TABLE IF NOT EXISTS user_totp (
    user_id    UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     BYTEA NOT NULL,
    enabled_at TIMESTAMPTZ,
    last_step  BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS recovery_codes (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, code_hash)
);
