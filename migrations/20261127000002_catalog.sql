-- The software catalog: registered locations, entities (as authored JSON),
-- flattened search fields for filters, relations, ingestion problems, FTS.

CREATE TABLE catalog_locations (
    id                TEXT PRIMARY KEY,                 -- UUID
    type              TEXT NOT NULL CHECK (type IN ('url', 'file')),
    target            TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    last_refresh_at   INTEGER,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'problems', 'failed')),
    entity_count      INTEGER NOT NULL DEFAULT 0,
    problem_count     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, target)
);

CREATE TABLE catalog_entities (
    uid               TEXT PRIMARY KEY,                 -- UUID, stable across refreshes
    entity_ref        TEXT NOT NULL UNIQUE,             -- kind:namespace/name, lowercase
    kind              TEXT NOT NULL,                    -- as authored (Component)
    namespace         TEXT NOT NULL,
    name              TEXT NOT NULL,
    location_id       TEXT REFERENCES catalog_locations(id) ON DELETE SET NULL,
    source            TEXT NOT NULL,                    -- the file or URL it was read from
    body              TEXT NOT NULL,                    -- the entity as JSON, with metadata.uid and etag
    etag              TEXT NOT NULL,
    orphan            INTEGER NOT NULL DEFAULT 0,       -- gone from its source; kept and shown
    spec_type         TEXT,
    lifecycle         TEXT,
    owner_ref         TEXT,
    title             TEXT,
    description       TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX catalog_entities_location ON catalog_entities(location_id);
CREATE INDEX catalog_entities_kind_name ON catalog_entities(kind, name);
CREATE INDEX catalog_entities_owner ON catalog_entities(owner_ref);

-- Backstage-style flattened fields: every filterable leaf as (key, value), lowercase.
CREATE TABLE catalog_fields (
    entity_uid        TEXT NOT NULL REFERENCES catalog_entities(uid) ON DELETE CASCADE,
    key               TEXT NOT NULL,
    value             TEXT NOT NULL
);
CREATE INDEX catalog_fields_key_value ON catalog_fields(key, value, entity_uid);
CREATE INDEX catalog_fields_entity ON catalog_fields(entity_uid);

-- Relations, both directions, remembered by the entity that declared them.
CREATE TABLE catalog_relations (
    origin_uid        TEXT NOT NULL REFERENCES catalog_entities(uid) ON DELETE CASCADE,
    source_ref        TEXT NOT NULL,
    type              TEXT NOT NULL,
    target_ref        TEXT NOT NULL
);
CREATE INDEX catalog_relations_source ON catalog_relations(source_ref);
CREATE INDEX catalog_relations_origin ON catalog_relations(origin_uid);

CREATE TABLE catalog_problems (
    id                INTEGER PRIMARY KEY,
    location_id       TEXT NOT NULL REFERENCES catalog_locations(id) ON DELETE CASCADE,
    source            TEXT NOT NULL,
    document          INTEGER,
    entity_ref        TEXT,
    field             TEXT,
    message           TEXT NOT NULL,
    at                INTEGER NOT NULL
);
CREATE INDEX catalog_problems_location ON catalog_problems(location_id);
CREATE INDEX catalog_problems_entity ON catalog_problems(entity_ref);

CREATE VIRTUAL TABLE catalog_search USING fts5(
    entity_uid UNINDEXED, name, title, description, tags,
    tokenize = 'unicode61 remove_diacritics 2'
);
