-- A live's lifecycle: what its recording holds, and followers told when it goes live.

-- live_segments: one row per whole segment of a live written to storage
-- (lives/{live}/seg-{msn}.m4s), inserted by the packaging process right after the write, with
-- the encoder connection ('run', whose init is lives/{live}/init-{run}.mp4) and the duration.
-- The replay is made from these rows — every run, in order — by the process that ends the live,
-- and by the janitor for a live whose packaging process crashed; until the replay's transcode
-- is ready its watch page plays them as an HLS VOD playlist.
CREATE TABLE IF NOT EXISTS live_segments (
    live_id     BLOB NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    msn         INTEGER NOT NULL CHECK (msn >= 0),
    run         INTEGER NOT NULL CHECK (run >= 0),
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (live_id, msn)
) STRICT;

-- The live a replay video came from (its watch page plays the live's segments until the
-- replay's transcode is ready).
CREATE INDEX IF NOT EXISTS lives_replay ON lives (replay_video_id);

-- kind 'live_started': a channel the recipient follows went live; subject_id is the live,
-- channel_id its channel. SQLite cannot change a CHECK constraint in place: both tables are
-- rebuilt with the wider list (nothing references them), their rows and indexes kept.
DROP TABLE IF EXISTS notifications_new;
CREATE TABLE notifications_new (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'warning', 'live_started')),
    subject_id BLOB NOT NULL,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    text       TEXT,
    CONSTRAINT notifications_once UNIQUE (user_id, kind, channel_id, subject_id)
) STRICT;
INSERT INTO notifications_new (id, user_id, kind, subject_id, channel_id, created_at, read_at, text)
    SELECT id, user_id, kind, subject_id, channel_id, created_at, read_at, text FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX IF NOT EXISTS notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS notifications_user_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

DROP TABLE IF EXISTS notification_settings_new;
CREATE TABLE notification_settings_new (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'live_started')),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (user_id, kind)
) STRICT;
INSERT INTO notification_settings_new SELECT user_id, kind, enabled FROM notification_settings;
DROP TABLE notification_settings;
ALTER TABLE notification_settings_new RENAME TO notification_settings;
