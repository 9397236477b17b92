-- Live chat. A message belongs to a live and its author; 'stream_ms' is the stream time it was
-- written at (milliseconds since the live started; 0 before it did), so the replay shows the
-- chat in step with the video. A removed message keeps its row ('deleted_at', 'deleted_by')
-- and is never shown again. A timeout forbids a user to write in one live until 'until'.
CREATE TABLE IF NOT EXISTS chat_messages (
    id          BLOB PRIMARY KEY NOT NULL,
    live_id     BLOB NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    author_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    stream_ms   INTEGER NOT NULL CHECK (stream_ms >= 0),
    created_at  TEXT NOT NULL,
    deleted_at  TEXT,
    deleted_by  BLOB REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS chat_messages_replay ON chat_messages (live_id, stream_ms, id);
CREATE TABLE IF NOT EXISTS chat_timeouts (
    live_id     BLOB NOT NULL REFERENCES lives (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    until       TEXT NOT NULL,
    by_id       BLOB REFERENCES users (id) ON DELETE SET NULL,
    PRIMARY KEY (live_id, user_id)
);
