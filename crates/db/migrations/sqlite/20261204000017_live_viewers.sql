-- A live's approximate viewer count: the distinct players that asked the packaging process for
-- its playlist in the last seconds, written by that process every few seconds when it changes
-- (never once per request). 'seen_at': when the packaging process last said it still holds the
-- live (every few seconds); a live left 'live' with no such word for a minute lost its process
-- (a crash) and is ended by the janitor.
ALTER TABLE lives ADD COLUMN viewers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE lives ADD COLUMN seen_at TEXT;
