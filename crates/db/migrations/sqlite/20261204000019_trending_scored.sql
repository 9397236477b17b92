-- The videos with a trending score above zero, for the trending chore's "zero the scores whose
-- views have all aged out" step: without it that step read every video (1.8 s on a million
-- videos, holding SQLite's write lock meanwhile); with it, only the few thousand scored ones.
CREATE INDEX IF NOT EXISTS videos_scored ON videos (id) WHERE trending_score > 0;
