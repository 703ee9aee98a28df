-- Where each service was deployed by `kube:apply`: the runtime view asks only
-- these clusters (and the ones the entity's annotations name), and Vault's
-- Kubernetes roles bind to this namespace at this cluster's auth mount.
CREATE TABLE kube_placements (
    entity_ref  TEXT NOT NULL,               -- component:namespace/name, lowercase
    cluster     TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    selector    TEXT NOT NULL,               -- label selector of its objects
    team        TEXT NOT NULL,
    objects     TEXT NOT NULL,               -- JSON array of Kind/name applied
    task_id     TEXT,
    applied_by  TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,
    ready       INTEGER NOT NULL DEFAULT 0,  -- the rollout became ready
    PRIMARY KEY (entity_ref, cluster)
);
CREATE INDEX kube_placements_team ON kube_placements (team);
