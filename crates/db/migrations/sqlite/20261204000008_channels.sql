-- Channels, subscriptions and the feed.
-- A channel is where videos are published. Every account has one whose handle is its username
-- and whose id is the account's id (made here for existing accounts, at sign-up for new ones);
-- a user may create more. Handles are unique case-insensitively through handle_key, across
-- every user and channel (a user's username is their first channel's handle). links is a JSON
-- array of {"title", "url"} in TEXT. subscriber_count is kept exact by the transaction that
-- inserts or deletes a subscription.
CREATE TABLE IF NOT EXISTS channels (
    id               BLOB PRIMARY KEY NOT NULL,
    owner_id         BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    handle           TEXT NOT NULL,
    handle_key       TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    links            TEXT NOT NULL DEFAULT '[]',
    subscriber_count INTEGER NOT NULL DEFAULT 0 CHECK (subscriber_count >= 0),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS channels_owner ON channels (owner_id, created_at);

INSERT INTO channels (id, owner_id, handle, handle_key, display_name, created_at, updated_at)
    SELECT id, id, username, username_key, display_name, created_at, created_at FROM users WHERE true
    ON CONFLICT DO NOTHING;

-- Every video belongs to a channel; existing ones to their owner's first channel. (SQLite cannot
-- add a NOT NULL column with a foreign key: the application always sets it.)
ALTER TABLE videos ADD COLUMN channel_id BLOB REFERENCES channels (id);
UPDATE videos SET channel_id = owner_id WHERE channel_id IS NULL;
-- A channel's listed videos, newest first, and the feed's per-channel probe: only the rows the
-- public lists may show (the queries repeat this predicate word for word, so the planner may
-- use the partial index).
CREATE INDEX IF NOT EXISTS videos_channel_published ON videos (channel_id, published_at DESC, id DESC)
    WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS videos_channel_views ON videos (channel_id, views DESC, id DESC)
    WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS videos_channel ON videos (channel_id);

-- Who follows which channel. One row per pair; created_at orders a user's list (newest first).
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, channel_id)
) STRICT;
CREATE INDEX IF NOT EXISTS subscriptions_user_created ON subscriptions (user_id, created_at DESC, channel_id DESC);
CREATE INDEX IF NOT EXISTS subscriptions_channel ON subscriptions (channel_id);

-- The subscriptions page's "new since your last visit": visited_at is the current visit (a
-- visit lasts while pages are opened less than 30 minutes apart), previous_at the one before.
CREATE TABLE IF NOT EXISTS feed_visits (
    user_id     BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    visited_at  TEXT NOT NULL,
    previous_at TEXT
) STRICT;
