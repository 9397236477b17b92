-- A viewer's library: ratings of videos, playlists (with the system "Watch later" list) and the
-- watch history with its resume position.
-- likes and dislikes are kept exact by the transaction that inserts, changes or deletes a
-- rating row (the counter moves only when a row really changed).
ALTER TABLE videos ADD COLUMN likes INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0);
ALTER TABLE videos ADD COLUMN dislikes INTEGER NOT NULL DEFAULT 0 CHECK (dislikes >= 0);

-- One rating per user and video; rated_at orders "Liked videos" (newest like first).
CREATE TABLE IF NOT EXISTS video_ratings (
    user_id  BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    rating   TEXT NOT NULL CHECK (rating IN ('like', 'dislike')),
    rated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, video_id)
) STRICT;
CREATE INDEX IF NOT EXISTS video_ratings_liked ON video_ratings (user_id, rated_at DESC, video_id DESC)
    WHERE rating = 'like';
CREATE INDEX IF NOT EXISTS video_ratings_video ON video_ratings (video_id);

-- A playlist belongs to a user and is shown on one of their channels. kind 'watch_later' is the
-- user's one system list (made on first use). last_position is the position key of the last
-- item appended; items go GAP after it, so appending and moving change one item row.
CREATE TABLE IF NOT EXISTS playlists (
    id            BLOB PRIMARY KEY NOT NULL,
    owner_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id    BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('user', 'watch_later')),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    privacy       TEXT NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    last_position INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS playlists_owner ON playlists (owner_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS playlists_channel_public ON playlists (channel_id, updated_at DESC, id DESC)
    WHERE privacy = 'public' AND kind = 'user';
CREATE UNIQUE INDEX IF NOT EXISTS playlists_watch_later ON playlists (owner_id) WHERE kind = 'watch_later';

-- The videos of a playlist, ordered by (position, id): a sparse integer key, so a move writes
-- one row (the midpoint of its new neighbours); a video is in a list at most once.
CREATE TABLE IF NOT EXISTS playlist_items (
    id          BLOB PRIMARY KEY NOT NULL,
    playlist_id BLOB NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    video_id    BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    added_at    TEXT NOT NULL,
    UNIQUE (playlist_id, video_id)
) STRICT;
CREATE INDEX IF NOT EXISTS playlist_items_order ON playlist_items (playlist_id, position, id);
CREATE INDEX IF NOT EXISTS playlist_items_video ON playlist_items (video_id);

-- What a user watched, one row per video updated in place, with where they stopped.
CREATE TABLE IF NOT EXISTS watch_history (
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id      BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    position_secs INTEGER NOT NULL DEFAULT 0 CHECK (position_secs >= 0),
    watched_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, video_id)
) STRICT;
CREATE INDEX IF NOT EXISTS watch_history_recent ON watch_history (user_id, watched_at DESC, video_id DESC);

-- Per-user library settings (no row: defaults).
CREATE TABLE IF NOT EXISTS library_settings (
    user_id        BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    history_paused INTEGER NOT NULL DEFAULT 0 CHECK (history_paused IN (0, 1))
) STRICT;
