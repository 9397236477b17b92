-- Moderation: the moderator role, bans, per-user upload quotas, the first-account marker,
-- reports, videos hidden by moderation, suspended channels and warning notifications.
-- DDL and data changes are separate statements (CockroachDB runs schema changes on their own).

-- The role CHECK allows 'moderator'. The column constraint is named users_role_check on
-- PostgreSQL and check_role on CockroachDB; whichever exists goes.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users DROP CONSTRAINT IF EXISTS check_role;
ALTER TABLE users ADD CONSTRAINT users_role_allowed CHECK (role IN ('user', 'moderator', 'admin'));
-- banned_at: when the account was banned (NULL: not banned); ban_reason is shown to nobody
-- but moderators. upload_quota_bytes / daily_upload_quota_bytes override the instance's
-- upload quotas for this account when set.
ALTER TABLE users ADD COLUMN IF NOT EXISTS banned_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN IF NOT EXISTS ban_reason TEXT;
ALTER TABLE users ADD COLUMN IF NOT EXISTS upload_quota_bytes BIGINT CHECK (upload_quota_bytes >= 0);
ALTER TABLE users ADD COLUMN IF NOT EXISTS daily_upload_quota_bytes BIGINT CHECK (daily_upload_quota_bytes >= 0);

-- kind 'warning': a moderator's warning to user_id; subject_id is the warning's own id,
-- channel_id the user's personal channel, text the moderator's words.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS check_kind;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_allowed
    CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'warning'));
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS text TEXT;

-- Normalised addresses (the email_key form) of banned accounts: registration and external
-- sign-up treat them as taken; the record outlives a deleted account. Removed again by an unban.
CREATE TABLE IF NOT EXISTS banned_emails (
    email_key  TEXT PRIMARY KEY,
    user_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row at most: claimed, with INSERT … ON CONFLICT DO NOTHING, in the transaction of the
-- first account ever created, which becomes admin (unless first_user_admin is off). An
-- instance that already has accounts has had its first one.
CREATE TABLE IF NOT EXISTS first_account (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    user_id    UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
INSERT INTO first_account (id, user_id, created_at)
    SELECT 1, id, created_at FROM users ORDER BY created_at LIMIT 1
    ON CONFLICT DO NOTHING;

-- Reports of a video, comment or user. target_id has no foreign key (it names any of the
-- three). One open report per reporter and target (reports_open_once); a resolved report
-- records who resolved it (resolved_by) and how.
CREATE TABLE IF NOT EXISTS reports (
    id          UUID PRIMARY KEY,
    reporter_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('video', 'comment', 'user')),
    target_id   UUID NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolved_by UUID REFERENCES users (id) ON DELETE SET NULL,
    resolution  TEXT CHECK (resolution IN ('hidden', 'deleted', 'dismissed', 'warned', 'banned'))
);
CREATE UNIQUE INDEX IF NOT EXISTS reports_open_once ON reports (reporter_id, target_kind, target_id)
    WHERE resolved_at IS NULL;
-- The queue: open reports by target.
CREATE INDEX IF NOT EXISTS reports_open_target ON reports (target_kind, target_id, created_at)
    WHERE resolved_at IS NULL;

-- hidden: NULL (shown as its privacy says), 'moderation' (hidden by a moderator; hidden_reason
-- is shown to the owner) or 'ban' (its owner is banned; an unban clears only these).
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden TEXT CHECK (hidden IN ('moderation', 'ban'));
ALTER TABLE videos ADD COLUMN IF NOT EXISTS hidden_reason TEXT;
-- A banned owner's channels: not found, searched or listed while the ban lasts.
ALTER TABLE channels ADD COLUMN IF NOT EXISTS suspended BOOLEAN NOT NULL DEFAULT FALSE;
