-- One index per order the catalog offers, led by the order's key and
-- carrying the columns the common filters read (kind, type, lifecycle,
-- owner, namespace). A page of 50 in any of these orders is then a walk
-- along one index that stops after 50 matches, with no table row read until
-- a match is returned, instead of sorting every entity of the kind.
CREATE INDEX catalog_entities_order_ref
    ON catalog_entities(entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_name
    ON catalog_entities(name COLLATE NOCASE, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_title
    ON catalog_entities(COALESCE(title, name) COLLATE NOCASE, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_kind
    ON catalog_entities(kind COLLATE NOCASE, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_type
    ON catalog_entities(spec_type, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_lifecycle
    ON catalog_entities(lifecycle, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
CREATE INDEX catalog_entities_order_owner
    ON catalog_entities(owner_ref, entity_ref, kind_key, type_key, lifecycle_key, namespace);
CREATE INDEX catalog_entities_order_namespace
    ON catalog_entities(namespace, entity_ref, kind_key, type_key, lifecycle_key, owner_ref);
CREATE INDEX catalog_entities_order_uid
    ON catalog_entities(uid, entity_ref, kind_key, type_key, lifecycle_key, owner_ref, namespace);
-- Which of these to walk depends on how many entities a filter keeps, which
-- SQLite learns from table statistics (refreshed after every large refresh).
ANALYZE catalog_entities;
