-- Videos and the resumable uploads that create them.
-- A video row exists from the moment its upload is created (state 'uploading'), so its owner can
-- edit the metadata while the bytes go up; it moves to 'processing' when the upload completes
-- (a transcode job is queued in the same transaction), then 'ready' or 'failed'. 'playable'
-- turns true as soon as the first segments of every rendition are published.
-- tags and renditions are JSON arrays in TEXT.
CREATE TABLE IF NOT EXISTS videos (
    id              BLOB PRIMARY KEY NOT NULL,
    owner_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    tags            TEXT NOT NULL DEFAULT '[]',
    category        TEXT,
    language        TEXT,
    licence         TEXT,
    privacy         TEXT NOT NULL CHECK (privacy IN ('public', 'unlisted', 'private')),
    state           TEXT NOT NULL CHECK (state IN ('uploading', 'processing', 'ready', 'failed')),
    progress        INTEGER NOT NULL DEFAULT 0,
    playable        INTEGER NOT NULL DEFAULT 0 CHECK (playable IN (0, 1)),
    failure_reason  TEXT,
    duration_secs   REAL,
    width           INTEGER,
    height          INTEGER,
    renditions      TEXT NOT NULL DEFAULT '[]',
    has_poster      INTEGER NOT NULL DEFAULT 0 CHECK (has_poster IN (0, 1)),
    has_storyboard  INTEGER NOT NULL DEFAULT 0 CHECK (has_storyboard IN (0, 1)),
    original_name   TEXT NOT NULL,
    original_bytes  INTEGER NOT NULL,
    views           INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    published_at    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS videos_owner ON videos (owner_id, created_at);
CREATE INDEX IF NOT EXISTS videos_listed ON videos (privacy, state, published_at);

-- A tus upload in progress: the bytes live in a staging file named by the id until complete.
-- patch_owner/patch_until is a short lease held by the request appending bytes, so two PATCHes
-- on one upload are refused rather than interleaved, across API instances too.
CREATE TABLE IF NOT EXISTS uploads (
    id              BLOB PRIMARY KEY NOT NULL,
    owner_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    video_id        BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    length          INTEGER NOT NULL CHECK (length >= 0),
    received        INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0),
    metadata        TEXT NOT NULL,
    patch_owner     BLOB,
    patch_until     TEXT,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    completed_at    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS uploads_owner ON uploads (owner_id, created_at);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (expires_at);
