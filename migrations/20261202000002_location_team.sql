-- The team a golden-path task registered a location for (NULL: registered by a
-- platform admin or configuration). Secrets bind only to entities whose
-- location is the owning team's own or an admin's.
ALTER TABLE catalog_locations ADD COLUMN team TEXT;
