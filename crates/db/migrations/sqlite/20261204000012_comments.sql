-- Comments, their likes, per-video comment settings, blocked words, and the comment
-- notification kinds.
--
-- A comment belongs to a video; a reply names the comment it answers (parent_id) and the
-- thread's top-level comment (root_id; NULL for a top-level comment), so a thread is one range
-- of comments_thread whatever the depth of the conversation. ids are UUID v7 made by the
-- application: they sort by creation time, so "newest first" is "id descending" and a cursor is
-- one (key, id) pair. status: 'visible', 'held' (awaiting the video owner's approval: shown only
-- to its author and the owner), 'deleted' (by its author, kept as "[deleted]" because replies
-- hang on it) or 'removed' (by the video's owner or a moderator, shown as "[removed]"). body is
-- the markdown source, html its sanitised rendering, made once when the comment is written.
-- Counters move only in the transaction whose conditional write really changed a row:
-- like_count = rows of comment_likes, reply_count = the thread's replies that are not held,
-- videos.comment_count = the video's visible comments.
CREATE TABLE IF NOT EXISTS comments (
    id          BLOB PRIMARY KEY NOT NULL,
    video_id    BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    author_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id   BLOB REFERENCES comments (id) ON DELETE CASCADE,
    root_id     BLOB REFERENCES comments (id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    html        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('visible', 'held', 'deleted', 'removed')),
    like_count  INTEGER NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    reply_count INTEGER NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at  TEXT NOT NULL,
    edited_at   TEXT
) STRICT;
-- A video's top-level comments, newest first and top first (likes, then newest): each page is
-- one range scan from the cursor. Held comments are not in them (their author and the owner
-- read them through comments_held).
CREATE INDEX IF NOT EXISTS comments_video_newest ON comments (video_id, id DESC)
    WHERE root_id IS NULL AND status <> 'held';
CREATE INDEX IF NOT EXISTS comments_video_top ON comments (video_id, like_count DESC, id DESC)
    WHERE root_id IS NULL AND status <> 'held';
-- A thread's replies, oldest first.
CREATE INDEX IF NOT EXISTS comments_thread ON comments (root_id, id) WHERE status <> 'held';
-- Whether anything answers a comment (deleting it then leaves "[deleted]"), and the cascade.
CREATE INDEX IF NOT EXISTS comments_parent ON comments (parent_id);
-- The held comments of a video (the owner's queue) and an author's own.
CREATE INDEX IF NOT EXISTS comments_held ON comments (video_id, id) WHERE status = 'held';
CREATE INDEX IF NOT EXISTS comments_author ON comments (author_id, id);

CREATE TABLE IF NOT EXISTS comment_likes (
    comment_id BLOB NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (comment_id, user_id)
) STRICT;
CREATE INDEX IF NOT EXISTS comment_likes_user ON comment_likes (user_id);

-- Per video: who may comment ('open'; 'closed': nobody; 'held': every new comment waits for the
-- owner's approval), how many visible comments it has, and the one comment its owner pinned.
ALTER TABLE videos ADD COLUMN comment_policy TEXT NOT NULL DEFAULT 'open'
    CHECK (comment_policy IN ('open', 'closed', 'held'));
ALTER TABLE videos ADD COLUMN comment_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN pinned_comment_id BLOB REFERENCES comments (id) ON DELETE SET NULL;

-- Blocked words: scope_id is a channel's id, or the nil UUID for the instance-wide list. Words
-- are stored normalised (NFKC, lower case); a comment holding one is held for approval.
CREATE TABLE IF NOT EXISTS blocked_words (
    scope_id   BLOB NOT NULL,
    word       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope_id, word)
) STRICT;

-- The comment notification kinds: subject_id is the comment, channel_id its video's channel.
-- SQLite cannot change a CHECK constraint in place: both tables are rebuilt with the wider list
-- (nothing references them), their rows and indexes kept.
CREATE TABLE notifications_new (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment')),
    subject_id BLOB NOT NULL,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    CONSTRAINT notifications_once UNIQUE (user_id, kind, channel_id, subject_id)
) STRICT;
INSERT INTO notifications_new SELECT id, user_id, kind, subject_id, channel_id, created_at, read_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX IF NOT EXISTS notifications_user_created ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS notifications_user_unread ON notifications (user_id, created_at DESC, id DESC)
    WHERE read_at IS NULL;

CREATE TABLE notification_settings_new (
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment')),
    enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (user_id, kind)
) STRICT;
INSERT INTO notification_settings_new SELECT user_id, kind, enabled FROM notification_settings;
DROP TABLE notification_settings;
ALTER TABLE notification_settings_new RENAME TO notification_settings;
