-- A channel's avatar and banner. Each is stored as renditions under the channel's id, named
-- with a version (random, chosen at upload) so their URLs can be cached for ever and a new
-- upload changes them; NULL means none (a placeholder is shown).
ALTER TABLE channels ADD COLUMN avatar_version INTEGER;
ALTER TABLE channels ADD COLUMN banner_version INTEGER;
