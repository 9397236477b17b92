-- In-app notifications and their per-kind settings.
-- A notification tells user_id about a subject in a channel: kind 'new_video' (subject_id is the
-- video, channel_id its channel: a channel user_id follows published it) or 'new_subscriber'
-- (subject_id is the subscriber's user id, channel_id user_id's channel they followed).
-- Notifications are produced by jobs (fan-out in batches, retried after a crash), so the
-- UNIQUE key is what makes producing one twice impossible: every insert is
-- ON CONFLICT DO NOTHING. subject_id has no foreign key (it names a video or a user); lists
-- join the subject and leave out what is gone or no longer public.
CREATE TABLE IF NOT EXISTS notifications (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber')),
    subject_id BLOB NOT NULL,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    CONSTRAINT notifications_once UNIQUE (user_id, kind, channel_id, subject_id)
) STRICT;
-- The newest-first keyset listing of one user's notifications.
CREATE INDEX IF NOT EXISTS notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
-- The unread count (the bell) and "mark all read" read only unread rows.
CREATE INDEX IF NOT EXISTS notifications_user_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

-- Per-user, per-kind switches. No row means enabled (the default).
CREATE TABLE IF NOT EXISTS notification_settings (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber')),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (user_id, kind)
) STRICT;

-- The fan-out walks a channel's subscribers in user id order, a batch at a time from a cursor:
-- (channel_id, user_id) serves that keyset and every use of the old (channel_id) index.
CREATE INDEX IF NOT EXISTS subscriptions_channel_user ON subscriptions (channel_id, user_id);
DROP INDEX IF EXISTS subscriptions_channel;
