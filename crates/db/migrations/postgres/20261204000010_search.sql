-- Search, trending and categories (the home page).
--
-- Search: a tsvector column in videos (title weight A, tags B, description C) and in channels
-- (handle and display name A, description C), with GIN indexes (CockroachDB 23.1 has both). The
-- text search configuration is 'simple': lower-casing only, no stemming and no stop words, so it
-- treats every language alike (a video's language is optional and often wrong, and a stemmer
-- for the wrong language mangles words; 'simple' exists on CockroachDB too, unaccent does not).
-- No triggers: the application sets the column in the same statement or transaction as every
-- write that changes the text. The videos index holds only the rows search may show.
ALTER TABLE videos ADD COLUMN IF NOT EXISTS search tsvector;
ALTER TABLE channels ADD COLUMN IF NOT EXISTS search tsvector;
UPDATE videos SET search = setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', tags), 'B')
    || setweight(to_tsvector('simple', description), 'C');
UPDATE channels SET search = setweight(to_tsvector('simple', handle), 'A') || setweight(to_tsvector('simple', display_name), 'A')
    || setweight(to_tsvector('simple', description), 'C');
CREATE INDEX IF NOT EXISTS videos_search ON videos USING GIN (search) WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS channels_search ON channels USING GIN (search);

-- Trending: views per video per hour (written with the batched view counts), from which a
-- periodic chore computes a time-decayed score into trending_score; the home page reads the
-- partial index videos_trending, one range scan.
CREATE TABLE IF NOT EXISTS video_view_hours (
    video_id UUID NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    hour     TIMESTAMPTZ NOT NULL,
    views    BIGINT NOT NULL CHECK (views >= 0),
    PRIMARY KEY (video_id, hour)
);
CREATE INDEX IF NOT EXISTS video_view_hours_hour ON video_view_hours (hour);
ALTER TABLE videos ADD COLUMN IF NOT EXISTS trending_score DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS videos_trending ON videos (trending_score DESC, published_at DESC, id DESC)
    WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL;
-- The recent list's own index. Its predicate carries a term that is always true
-- (trending_score >= 0) and that only the recent list's query repeats, so the planner cannot
-- pick it for a channel's or the feed's probe, which have videos_channel_published.
CREATE INDEX IF NOT EXISTS videos_published ON videos (published_at DESC, id DESC)
    WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL AND trending_score >= 0;

-- Categories: a fixed list (PeerTube's), stored by slug. Free text that names an entry becomes
-- its slug; anything else is cleared (it matched no list a viewer could browse).
UPDATE videos SET category = CASE
    WHEN lower(trim(category)) IN ('music') THEN 'music'
    WHEN lower(trim(category)) IN ('films') THEN 'films'
    WHEN lower(trim(category)) IN ('vehicles') THEN 'vehicles'
    WHEN lower(trim(category)) IN ('art') THEN 'art'
    WHEN lower(trim(category)) IN ('sports') THEN 'sports'
    WHEN lower(trim(category)) IN ('travels') THEN 'travels'
    WHEN lower(trim(category)) IN ('gaming') THEN 'gaming'
    WHEN lower(trim(category)) IN ('people') THEN 'people'
    WHEN lower(trim(category)) IN ('comedy') THEN 'comedy'
    WHEN lower(trim(category)) IN ('entertainment') THEN 'entertainment'
    WHEN lower(trim(category)) IN ('news & politics', 'news-politics') THEN 'news-politics'
    WHEN lower(trim(category)) IN ('how to', 'how-to') THEN 'how-to'
    WHEN lower(trim(category)) IN ('education') THEN 'education'
    WHEN lower(trim(category)) IN ('activism') THEN 'activism'
    WHEN lower(trim(category)) IN ('science & technology', 'science-technology') THEN 'science-technology'
    WHEN lower(trim(category)) IN ('animals') THEN 'animals'
    WHEN lower(trim(category)) IN ('kids') THEN 'kids'
    WHEN lower(trim(category)) IN ('food') THEN 'food'
    WHEN lower(trim(category)) = 'film & animation' THEN 'films'
    WHEN lower(trim(category)) = 'people & blogs' THEN 'people'
    WHEN lower(trim(category)) = 'travel' THEN 'travels'
    WHEN lower(trim(category)) = 'news' THEN 'news-politics'
    ELSE NULL END
    WHERE category IS NOT NULL;
CREATE INDEX IF NOT EXISTS videos_category_published ON videos (category, published_at DESC, id DESC)
    WHERE privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL;
