-- A channel's avatar and banner. Each is stored as renditions under the channel's id, named
-- with a version (random, chosen at upload) so their URLs can be cached for ever and a new
-- upload changes them; NULL means none (a placeholder is shown). Nullable columns without a
-- default: no rewrite, no backfill.
ALTER TABLE channels ADD COLUMN IF NOT EXISTS avatar_version BIGINT;
ALTER TABLE channels ADD COLUMN IF NOT EXISTS banner_version BIGINT;
