-- Second factor: one TOTP secret per user (pending until confirmed with a code, enabled_at then
-- set), the last step used (a code is never accepted twice), and single-use recovery codes
-- kept only as hashes.
CREATE TABLE IF NOT EXISTS user_totp (
    user_id    BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     BLOB NOT NULL,
    enabled_at TEXT,
    last_step  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS recovery_codes (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, code_hash)
) STRICT;
