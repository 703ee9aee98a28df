-- GitLab group discovery (`gitlab-discovery`) beside GitHub organization
-- discovery. SQLite cannot change a CHECK constraint, so the
-- table is rebuilt. `db::migrate` runs migrations with foreign keys off, so
-- the rebuild neither cascades to problems nor detaches entities.
CREATE TABLE catalog_locations_rebuilt (
    id                TEXT PRIMARY KEY,
    type              TEXT NOT NULL CHECK (type IN ('url', 'file', 'pasted', 'github-discovery', 'gitlab-discovery')),
    target            TEXT NOT NULL,
    content           TEXT,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    last_refresh_at   INTEGER,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'problems', 'failed')),
    entity_count      INTEGER NOT NULL DEFAULT 0,
    problem_count     INTEGER NOT NULL DEFAULT 0,
    team              TEXT,
    UNIQUE (type, target)
);
INSERT INTO catalog_locations_rebuilt
    (id, type, target, content, created_by, created_at, last_refresh_at, status, entity_count, problem_count, team)
SELECT id, type, target, content, created_by, created_at, last_refresh_at, status, entity_count, problem_count, team
FROM catalog_locations;
DROP TABLE catalog_locations;
ALTER TABLE catalog_locations_rebuilt RENAME TO catalog_locations;
