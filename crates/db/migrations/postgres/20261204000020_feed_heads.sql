-- The materialised head of an active viewer's feed (crates/db/src/feed_heads.rs).
-- A head is built on a feed read that finds none: the newest videos of the followed channels,
-- computed once, kept as feed_entries under the head's token. The fan-out job of each newly
-- listed video adds an entry to every follower's head (built or being built). A head answers
-- for every key (published_at, id) at or above its floor (no floor: the whole feed); a page
-- that runs past it continues with the computed feed. Subscribing drops the head (the next
-- read builds another, under a new token); entries under another token are ignored and
-- removed when the user's head is built again or expires.
CREATE TABLE IF NOT EXISTS feed_heads (
    user_id  UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token    UUID NOT NULL,
    ready    BOOLEAN NOT NULL DEFAULT FALSE,
    floor_at TIMESTAMPTZ,
    floor_id UUID,
    built_at TIMESTAMPTZ NOT NULL,
    read_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS feed_heads_read ON feed_heads (read_at);

CREATE TABLE IF NOT EXISTS feed_entries (
    user_id      UUID NOT NULL,
    token        UUID NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    video_id     UUID NOT NULL,
    PRIMARY KEY (user_id, token, published_at, video_id)
);
