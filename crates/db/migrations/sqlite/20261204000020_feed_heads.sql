-- The materialised head of an active viewer's feed (crates/db/src/feed_heads.rs).
-- A head is built on a feed read that finds none: the newest videos of the followed channels,
-- computed once, kept as feed_entries under the head's token. The fan-out job of each newly
-- listed video adds an entry to every follower's head (built or being built). A head answers
-- for every key (published_at, id) at or above its floor (no floor: the whole feed); a page
-- that runs past it continues with the computed feed. Subscribing drops the head (the next
-- read builds another, under a new token); entries under another token are ignored and
-- removed when the user's head is built again or expires.
CREATE TABLE IF NOT EXISTS feed_heads (
    user_id  BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token    BLOB NOT NULL,
    ready    INTEGER NOT NULL DEFAULT FALSE,
    floor_at TEXT,
    floor_id BLOB,
    built_at TEXT NOT NULL,
    read_at  TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS feed_heads_read ON feed_heads (read_at);

CREATE TABLE IF NOT EXISTS feed_entries (
    user_id      BLOB NOT NULL,
    token        BLOB NOT NULL,
    published_at TEXT NOT NULL,
    video_id     BLOB NOT NULL,
    PRIMARY KEY (user_id, token, published_at, video_id)
) STRICT, WITHOUT ROWID;
