-- Videos and the resumable uploads that create them.
-- A video row exists from the moment its upload is created (state 'uploading'), so its owner can
-- edit the metadata while the bytes go up; it moves to 'processing' when the upload completes
-- (a transcode job is queued in the same transaction), then 'ready' or 'failed'. 'playable'
-- turns true as soon as the first segments of every rendition are published.
-- tags and renditions are JSON arrays in TEXT.
CREATE TABLE IF NOT EXISTS videos (
    id              UUID PRIMARY KEY,
    owner_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    tags            TEXT NOT NULL DEFAULT '[]',
    category        TEXT,
    language        TEXT,
    licence         TEXT,
    privacy         TEXT NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    state           TEXT NOT NULL CHECK (state IN ('uploading', 'processing', 'ready', 'failed')),
    progress        INTEGER NOT NULL DEFAULT 0,
    playable        BOOLEAN NOT NULL DEFAULT false,
    failure_reason  TEXT,
    duration_secs   DOUBLE PRECISION,
    width           INTEGER,
    height          INTEGER,
    renditions      TEXT NOT NULL DEFAULT '[]',
    has_poster      BOOLEAN NOT NULL DEFAULT false,
    has_storyboard  BOOLEAN NOT NULL DEFAULT false,
    original_name   TEXT NOT NULL,
    original_bytes  BIGINT NOT NULL,
    views           BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    published_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS videos_owner ON videos (owner_id, created_at);
CREATE INDEX IF NOT EXISTS videos_listed ON videos (privacy, state, published_at);

-- A tus upload in progress: the bytes live in a staging file named by the id until complete.
-- patch_owner/patch_until is a short lease held by the request appending bytes, so two PATCHes
-- on one upload are refused rather than interleaved, across API instances too.
CREATE TABLE IF NOT EXISTS uploads (
    id              UUID PRIMARY KEY,
    owner_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id        UUID NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    length          BIGINT NOT NULL CHECK (length >= 0),
    received        BIGINT NOT NULL DEFAULT 0 CHECK (received >= 0),
    metadata        TEXT NOT NULL,
    patch_owner     UUID,
    patch_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS uploads_owner ON uploads (owner_id, created_at);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (expires_at);
