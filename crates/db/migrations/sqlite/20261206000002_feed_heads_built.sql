-- Feed heads (crates/db/src/feed_heads.rs): the janitor expires heads built long ago through
-- this index (and idle ones through feed_heads_read), one index range each instead of a scan.
-- Dropping a head now drops its entries too; entries left by heads dropped before are removed.
CREATE INDEX IF NOT EXISTS feed_heads_built ON feed_heads (built_at);
DELETE FROM feed_entries WHERE NOT EXISTS (
    SELECT 1 FROM feed_heads h WHERE h.user_id = feed_entries.user_id AND h.token = feed_entries.token
);
