-- no-transaction
-- Moderation: the moderator role, bans, per-user upload quotas, the first-account marker,
-- reports, videos hidden by moderation, suspended channels and warning notifications.
--
-- SQLite cannot change a CHECK constraint in place, so `users` and `notifications` are rebuilt
-- by SQLite's documented procedure (https://sqlite.org/lang_altertable.html, "Making Other
-- Kinds Of Table Schema Changes"): foreign keys off outside any transaction, then in one
-- transaction a new table, the rows copied, the old table dropped, the new one renamed and its
-- indexes made again, the foreign key check (which must find nothing: a violation fails the
-- migration through a CHECK, and the transaction rolls back), commit, foreign keys back on.
-- Every other table's REFERENCES users (id) names the table, so it follows the rename. Every
-- statement but the two pragmas runs in that one transaction.
PRAGMA foreign_keys = OFF;

BEGIN;

DROP TABLE IF EXISTS users_new;
-- banned_at: when the account was banned (NULL: not banned); ban_reason is shown to nobody
-- but moderators. upload_quota_bytes / daily_upload_quota_bytes override the instance's
-- upload quotas for this account when set.
CREATE TABLE users_new (
    id                       BLOB PRIMARY KEY NOT NULL,
    username                 TEXT NOT NULL,
    username_key             TEXT NOT NULL UNIQUE,
    email                    TEXT NOT NULL,
    email_key                TEXT NOT NULL UNIQUE,
    display_name             TEXT NOT NULL,
    password_hash            TEXT,
    role                     TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    email_verified           INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    banned_at                TEXT,
    ban_reason               TEXT,
    upload_quota_bytes       INTEGER CHECK (upload_quota_bytes >= 0),
    daily_upload_quota_bytes INTEGER CHECK (daily_upload_quota_bytes >= 0)
) STRICT;
INSERT INTO users_new (id, username, username_key, email, email_key, display_name, password_hash, role,
                       email_verified, created_at, updated_at)
    SELECT id, username, username_key, email, email_key, display_name, password_hash, role,
           email_verified, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

DROP TABLE IF EXISTS notifications_new;
-- kind 'warning': a moderator's warning to user_id; subject_id is the warning's own id,
-- channel_id the user's personal channel, text the moderator's words.
CREATE TABLE notifications_new (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'warning')),
    subject_id BLOB NOT NULL,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    text       TEXT,
    CONSTRAINT notifications_once UNIQUE (user_id, kind, channel_id, subject_id)
) STRICT;
INSERT INTO notifications_new (id, user_id, kind, subject_id, channel_id, created_at, read_at)
    SELECT id, user_id, kind, subject_id, channel_id, created_at, read_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX IF NOT EXISTS notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS notifications_user_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

CREATE TEMP TABLE moderation_fk_check (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO moderation_fk_check SELECT COUNT(*) FROM pragma_foreign_key_check;
DROP TABLE moderation_fk_check;

-- Normalised addresses (the email_key form) of banned accounts: registration and external
-- sign-up treat them as taken; the record outlives a deleted account. Removed again by an unban.
CREATE TABLE IF NOT EXISTS banned_emails (
    email_key  TEXT PRIMARY KEY NOT NULL,
    user_id    BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
) STRICT;

-- One row at most: claimed, with INSERT … ON CONFLICT DO NOTHING, in the transaction of the
-- first account ever created, which becomes admin (unless first_user_admin is off). An
-- instance that already has accounts has had its first one.
CREATE TABLE IF NOT EXISTS first_account (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    user_id    BLOB NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO first_account (id, user_id, created_at)
    SELECT 1, id, created_at FROM users ORDER BY created_at LIMIT 1
    ON CONFLICT DO NOTHING;

-- Reports of a video, comment or user. target_id has no foreign key (it names any of the
-- three). One open report per reporter and target (reports_open_once); a resolved report
-- records who resolved it (resolved_by) and how.
CREATE TABLE IF NOT EXISTS reports (
    id          BLOB PRIMARY KEY NOT NULL,
    reporter_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('video', 'comment', 'user')),
    target_id   BLOB NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by BLOB REFERENCES users (id) ON DELETE SET NULL,
    resolution  TEXT CHECK (resolution IN ('hidden', 'deleted', 'dismissed', 'warned', 'banned'))
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS reports_open_once ON reports (reporter_id, target_kind, target_id)
    WHERE resolved_at IS NULL;
-- The queue: open reports by target.
CREATE INDEX IF NOT EXISTS reports_open_target ON reports (target_kind, target_id, created_at)
    WHERE resolved_at IS NULL;

-- hidden: NULL (shown as its privacy says), 'moderation' (hidden by a moderator; hidden_reason
-- is shown to the owner) or 'ban' (its owner is banned; an unban clears only these).
ALTER TABLE videos ADD COLUMN hidden TEXT CHECK (hidden IN ('moderation', 'ban'));
ALTER TABLE videos ADD COLUMN hidden_reason TEXT;
-- A banned owner's channels: not found, searched or listed while the ban lasts.
ALTER TABLE channels ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1));

COMMIT;

PRAGMA foreign_keys = ON;
