-- Where each service was deployed by `kube:apply` (SQLite: migrations/20261209000001_kube.sql).
CREATE TABLE kube_placements (
    entity_ref  TEXT NOT NULL,               -- component:namespace/name, lowercase
    cluster     TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    selector    TEXT NOT NULL,               -- label selector of its objects
    team        TEXT NOT NULL,
    objects     TEXT NOT NULL,               -- JSON array of Kind/name applied
    task_id     TEXT,
    applied_by  TEXT NOT NULL,
    applied_at  BIGINT NOT NULL,
    ready       BOOLEAN NOT NULL DEFAULT FALSE,  -- the rollout became ready
    PRIMARY KEY (entity_ref, cluster)
);
CREATE INDEX kube_placements_team ON kube_placements (team);
