-- A live's lifecycle: what its recording holds, and followers told when it goes live.
-- DDL only (CockroachDB runs schema changes on their own).

-- live_segments: one row per whole segment of a live written to storage
-- (lives/{live}/seg-{msn}.m4s), inserted by the packaging process right after the write, with
-- the encoder connection ('run', whose init is lives/{live}/init-{run}.mp4) and the duration.
-- The replay is made from these rows — every run, in order — by the process that ends the live,
-- and by the janitor for a live whose packaging process crashed; until the replay's transcode
-- is ready its watch page plays them as an HLS VOD playlist.
CREATE TABLE IF NOT EXISTS live_segments (
    live_id     UUID NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    msn         BIGINT NOT NULL CHECK (msn >= 0),
    run         BIGINT NOT NULL CHECK (run >= 0),
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (live_id, msn)
);

-- The live a replay video came from (its watch page plays the live's segments until the
-- replay's transcode is ready).
CREATE INDEX IF NOT EXISTS lives_replay ON lives (replay_video_id);

-- kind 'live_started': a channel the recipient follows went live; subject_id is the live,
-- channel_id its channel. The constraints are named as migrations 12 and 14 left them.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_allowed;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_allowed
    CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'warning', 'live_started'));
ALTER TABLE notification_settings DROP CONSTRAINT IF EXISTS notification_settings_kind_check;
ALTER TABLE notification_settings DROP CONSTRAINT IF EXISTS check_kind;
ALTER TABLE notification_settings ADD CONSTRAINT notification_settings_kind_check
    CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment', 'live_started'));
