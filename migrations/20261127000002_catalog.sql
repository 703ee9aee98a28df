-- The software catalog: registered locations, entities (as authored JSON),
-- flattened search fields for filters, relations, ingestion problems,
-- full-text search, and a generation counter for caches.

CREATE TABLE catalog_locations (
    id                TEXT PRIMARY KEY,                 -- UUID
    type              TEXT NOT NULL CHECK (type IN ('url', 'file', 'pasted')),
    target            TEXT NOT NULL,
    content           TEXT,                             -- the YAML of a pasted import
    created_by        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    last_refresh_at   INTEGER,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'problems', 'failed')),
    entity_count      INTEGER NOT NULL DEFAULT 0,
    problem_count     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (type, target)
);

CREATE TABLE catalog_entities (
    id                INTEGER PRIMARY KEY,              -- stable rowid, shared with catalog_search
    uid               TEXT NOT NULL UNIQUE,             -- UUID, stable across refreshes
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
    updated_at        INTEGER NOT NULL,
    -- Filters on the most used keys read these indexed columns, not catalog_fields.
    kind_key          TEXT GENERATED ALWAYS AS (lower(kind)) VIRTUAL,
    type_key          TEXT GENERATED ALWAYS AS (lower(spec_type)) VIRTUAL,
    lifecycle_key     TEXT GENERATED ALWAYS AS (lower(lifecycle)) VIRTUAL,
    name_key          TEXT GENERATED ALWAYS AS (lower(name)) VIRTUAL
);
CREATE INDEX catalog_entities_location ON catalog_entities(location_id);
CREATE INDEX catalog_entities_owner ON catalog_entities(owner_ref);
CREATE INDEX catalog_entities_kind_type ON catalog_entities(kind_key, type_key);
CREATE INDEX catalog_entities_lifecycle ON catalog_entities(lifecycle_key);
CREATE INDEX catalog_entities_name_key ON catalog_entities(name_key);

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

-- Full-text search; rowid = catalog_entities.id. Kept in step by triggers.
CREATE VIRTUAL TABLE catalog_search USING fts5(
    name, title, description, tags,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- Bumped by every entity change, so read-only results (facets) can be cached.
CREATE TABLE catalog_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO catalog_meta (id, generation) VALUES (1, 0);

CREATE TRIGGER catalog_entities_after_insert AFTER INSERT ON catalog_entities
BEGIN
    INSERT INTO catalog_search (rowid, name, title, description, tags)
    VALUES (new.id, new.name, new.title, new.description,
            (SELECT group_concat(value, ' ') FROM json_each(new.body, '$.metadata.tags')));
    UPDATE catalog_meta SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER catalog_entities_after_update AFTER UPDATE ON catalog_entities
BEGIN
    DELETE FROM catalog_search WHERE rowid = old.id;
    INSERT INTO catalog_search (rowid, name, title, description, tags)
    VALUES (new.id, new.name, new.title, new.description,
            (SELECT group_concat(value, ' ') FROM json_each(new.body, '$.metadata.tags')));
    UPDATE catalog_meta SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER catalog_entities_after_delete AFTER DELETE ON catalog_entities
BEGIN
    DELETE FROM catalog_search WHERE rowid = old.id;
    UPDATE catalog_meta SET generation = generation + 1 WHERE id = 1;
END;

-- Entities a person starred, for the "starred" view.
CREATE TABLE catalog_stars (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    entity_ref  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, entity_ref)
);

-- Fields the portal manages beside the YAML (the YAML stays the source of
-- truth for everything else): owners and platform admins edit them.
CREATE TABLE catalog_portal_fields (
    entity_ref   TEXT PRIMARY KEY,
    oncall       TEXT NOT NULL DEFAULT '',
    support_url  TEXT NOT NULL DEFAULT '',
    notes        TEXT NOT NULL DEFAULT '',
    updated_by   TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);
