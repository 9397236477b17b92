-- Search, trending and categories (the home page).
--
-- Search: one FTS5 index of the text of videos (title, tags, description) and one of channels
-- (handle, display name, description). Both are contentless (the text lives in videos and
-- channels only; contentless_delete lets the application remove a row), with the unicode61
-- tokenizer (any language: Unicode word boundaries, case and diacritics folded, no stemming)
-- and prefix indexes of 2 and 3 characters for suggestions as one types. FTS5 rows are keyed by
-- integers, our rows by UUIDs: search_docs gives each indexed video or channel a number (this
-- table exists only on SQLite; PostgreSQL keeps a tsvector column in the row itself). The
-- application rewrites a row's index entry in the same transaction as every write that changes
-- its text (no triggers); rank is bm25 with a title/handle worth more than a description.
CREATE TABLE IF NOT EXISTS search_docs (
    doc INTEGER PRIMARY KEY,
    id  BLOB NOT NULL UNIQUE
) STRICT;
CREATE VIRTUAL TABLE IF NOT EXISTS videos_fts USING fts5(
    title, tags, description,
    content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO videos_fts (videos_fts, rank) VALUES ('rank', 'bm25(10.0, 5.0, 1.0)');
CREATE VIRTUAL TABLE IF NOT EXISTS channels_fts USING fts5(
    handle, display_name, description,
    content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
);
INSERT INTO channels_fts (channels_fts, rank) VALUES ('rank', 'bm25(10.0, 10.0, 1.0)');

INSERT INTO search_docs (id) SELECT id FROM videos WHERE true ON CONFLICT DO NOTHING;
INSERT INTO search_docs (id) SELECT id FROM channels WHERE true ON CONFLICT DO NOTHING;
INSERT INTO videos_fts (rowid, title, tags, description)
    SELECT d.doc, v.title, v.tags, v.description FROM videos v JOIN search_docs d ON d.id = v.id;
INSERT INTO channels_fts (rowid, handle, display_name, description)
    SELECT d.doc, c.handle, c.display_name, c.description FROM channels c JOIN search_docs d ON d.id = c.id;

-- Trending: views per video per hour (written with the batched view counts), from which a
-- periodic chore computes a time-decayed score into trending_score; the home page reads the
-- partial index videos_trending, one range scan.
CREATE TABLE IF NOT EXISTS video_view_hours (
    video_id BLOB NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    hour     TEXT NOT NULL,
    views    INTEGER NOT NULL CHECK (views >= 0),
    PRIMARY KEY (video_id, hour)
) STRICT;
CREATE INDEX IF NOT EXISTS video_view_hours_hour ON video_view_hours (hour);
ALTER TABLE videos ADD COLUMN trending_score REAL NOT NULL DEFAULT 0;
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
