-- Re-transcoding (crates/worker/src/transcode.rs): which version of a video's transcoded output
-- is served. 0 is the first transcode, stored where it always was; a re-transcode writes the
-- next version beside it and switches this column once that version is complete.
ALTER TABLE videos ADD COLUMN media_version INTEGER NOT NULL DEFAULT 0;
