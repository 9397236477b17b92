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
    id          UUID PRIMARY KEY,
    video_id    UUID NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    author_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id   UUID REFERENCES comments (id) ON DELETE CASCADE,
    root_id     UUID REFERENCES comments (id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    html        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('visible', 'held', 'deleted', 'removed')),
    like_count  BIGINT NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    reply_count BIGINT NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at  TIMESTAMPTZ NOT NULL,
    edited_at   TIMESTAMPTZ
);
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
    comment_id UUID NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX IF NOT EXISTS comment_likes_user ON comment_likes (user_id);

-- Per video: who may comment ('open'; 'closed': nobody; 'held': every new comment waits for the
-- owner's approval), how many visible comments it has, and the one comment its owner pinned.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS comment_policy TEXT NOT NULL DEFAULT 'open'
    CHECK (comment_policy IN ('open', 'closed', 'held'));
ALTER TABLE videos ADD COLUMN IF NOT EXISTS comment_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE videos ADD COLUMN IF NOT EXISTS pinned_comment_id UUID REFERENCES comments (id) ON DELETE SET NULL;

-- Blocked words: scope_id is a channel's id, or the nil UUID for the instance-wide list. Words
-- are stored normalised (NFKC, lower case); a comment holding one is held for approval.
CREATE TABLE IF NOT EXISTS blocked_words (
    scope_id   UUID NOT NULL,
    word       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope_id, word)
);

-- The comment notification kinds: subject_id is the comment, channel_id its video's channel.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment'));
ALTER TABLE notification_settings DROP CONSTRAINT IF EXISTS notification_settings_kind_check;
ALTER TABLE notification_settings ADD CONSTRAINT notification_settings_kind_check
    CHECK (kind IN ('new_video', 'new_subscriber', 'comment_reply', 'comment_mention', 'video_comment'));
