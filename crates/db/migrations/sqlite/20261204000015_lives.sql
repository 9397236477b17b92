-- Live streams. A live is made 'waiting' with a stream key (only its SHA-256 is kept), turns
-- 'live' when an encoder's publish is accepted and 'ended' for good when the encoder stays away
-- past the grace period or the owner ends it. 'connected' says an encoder publishes now (one
-- per live: claimed by a conditional UPDATE); 'packager_url' names the API process that
-- ingests and packages it, so any replica can find the playlists. 'last_reason' is why the
-- last connection or the live ended, shown to the owner. 'replay_video_id' is the ordinary
-- video the recording became.
CREATE TABLE IF NOT EXISTS lives (
    id                BLOB PRIMARY KEY NOT NULL,
    owner_id          BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id        BLOB NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    privacy           TEXT NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    replays           INTEGER NOT NULL DEFAULT 1 CHECK (replays IN (0, 1)),
    stream_key_hash   BLOB NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('waiting', 'live', 'ended')),
    connected         INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1)),
    packager_url      TEXT,
    last_reason       TEXT,
    replay_video_id   BLOB REFERENCES videos (id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    ended_at          TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS lives_stream_key ON lives (stream_key_hash);
CREATE INDEX IF NOT EXISTS lives_owner ON lives (owner_id, created_at);
