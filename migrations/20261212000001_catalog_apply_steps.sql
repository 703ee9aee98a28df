-- A location's refresh is written in steps, one short transaction per 200
-- entities, so a large location never holds SQLite's write lock for long.
-- `apply_token` names the refresh writing the location (one at a time);
-- `apply_pending` is 1 from its first step until its last, so a refresh a
-- crash interrupted is finished at the next start.
ALTER TABLE catalog_locations ADD COLUMN apply_token TEXT;
ALTER TABLE catalog_locations ADD COLUMN apply_pending INTEGER NOT NULL DEFAULT 0;
