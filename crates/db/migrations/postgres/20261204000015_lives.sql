-- Live streams. A live is made 'waiting' with a stream key (only its SHA-256 is kept), turns
-- 'live' when an encoder's publish is accepted and 'ended' for good when the encoder stays away
-- past the grace period or the owner ends it. 'connected' says an encoder publishes now (one
-- per live: claimed by a conditional UPDATE); 'packager_url' names the API process that
-- ingests and packages it, so any replica can find the playlists. 'last_reason' is why the
-- last connection or the live ended, shown to the owner. 'replay_video_id' is the ordinary
-- video the recording became.
CREATE TABLE IF NOT EXISTS lives (
    id                UUID PRIMARY KEY,
    owner_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id        UUID NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    title             TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    privacy           TEXT NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    replays           BOOLEAN NOT NULL DEFAULT true,
    stream_key_hash   BYTEA NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('waiting', 'live', 'ended')),
    connected         BOOLEAN NOT NULL DEFAULT false,
    packager_url      TEXT,
    last_reason       TEXT,
    replay_video_id   UUID REFERENCES videos (id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    started_at        TIMESTAMPTZ,
    ended_at          TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS lives_stream_key ON lives (stream_key_hash);
CREATE INDEX IF NOT EXISTS lives_owner ON lives (owner_id, created_at);
