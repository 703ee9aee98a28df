//! Where `kube:apply` deployed each service.

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A recorded placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRow {
    pub cluster: String,
    pub namespace: String,
    pub selector: String,
    pub team: String,
}

/// An entity's placements (its reference lowercase), by cluster.
pub async fn placements(db: Db<'_>, entity_ref: &str) -> Result<Vec<PlacementRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            PlacementRow,
            "SELECT cluster, namespace, selector, team FROM kube_placements WHERE entity_ref = ?1 ORDER BY cluster",
            entity_ref
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            PlacementRow,
            r#"SELECT cluster, namespace, selector, team FROM kube_placements WHERE entity_ref = $1 ORDER BY cluster COLLATE "C""#,
            entity_ref
        )
        .fetch_all(pool)
        .await,
    )
}

/// What `kube:apply` records.
#[derive(Debug, Clone, Copy)]
pub struct NewPlacement<'a> {
    /// Lowercase.
    pub entity_ref: &'a str,
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub selector: &'a str,
    pub team: &'a str,
    /// JSON array of Kind/name applied.
    pub objects: &'a str,
    pub task_id: &'a str,
    pub applied_by: &'a str,
    pub applied_at: i64,
    pub ready: bool,
}

/// Records where a service runs, replacing the cluster's earlier record.
pub async fn record(conn: Conn<'_>, p: NewPlacement<'_>) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO kube_placements (entity_ref, cluster, namespace, selector, team, objects, task_id, applied_by, applied_at, ready)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (entity_ref, cluster) DO UPDATE SET namespace = excluded.namespace,
               selector = excluded.selector, team = excluded.team, objects = excluded.objects,
               task_id = excluded.task_id, applied_by = excluded.applied_by,
               applied_at = excluded.applied_at, ready = excluded.ready",
            p.entity_ref,
            p.cluster,
            p.namespace,
            p.selector,
            p.team,
            p.objects,
            p.task_id,
            p.applied_by,
            p.applied_at,
            p.ready
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO kube_placements (entity_ref, cluster, namespace, selector, team, objects, task_id, applied_by, applied_at, ready)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (entity_ref, cluster) DO UPDATE SET namespace = excluded.namespace,
               selector = excluded.selector, team = excluded.team, objects = excluded.objects,
               task_id = excluded.task_id, applied_by = excluded.applied_by,
               applied_at = excluded.applied_at, ready = excluded.ready",
            p.entity_ref,
            p.cluster,
            p.namespace,
            p.selector,
            p.team,
            p.objects,
            p.task_id,
            p.applied_by,
            p.applied_at,
            p.ready
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Marks a placement's rollout ready.
pub async fn mark_ready(db: Db<'_>, entity_ref: &str, cluster: &str) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            "UPDATE kube_placements SET ready = 1 WHERE entity_ref = ?1 AND cluster = ?2",
            entity_ref,
            cluster
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "UPDATE kube_placements SET ready = TRUE WHERE entity_ref = $1 AND cluster = $2",
            entity_ref,
            cluster
        )
        .execute(pool)
        .await
        .map(drop),
    )
}

/// Where `team` last deployed a Component named `service` (lowercase), in
/// any catalog namespace: (cluster, namespace).
pub async fn latest_of_service(
    db: Db<'_>,
    team: &str,
    service: &str,
) -> Result<Option<(String, String)>, Error> {
    dual!(db, |pool|
        sqlite: {
            let pattern = format!("component:*/{service}");
            sqlx::query!(
                "SELECT cluster, namespace FROM kube_placements WHERE team = ?1 AND entity_ref GLOB ?2
                 ORDER BY applied_at DESC LIMIT 1",
                team,
                pattern
            )
            .fetch_optional(pool)
            .await
            .map(|r| r.map(|r| (r.cluster, r.namespace)))
        },
        postgres: sqlx::query!(
            "SELECT cluster, namespace FROM kube_placements
             WHERE team = $1 AND starts_with(entity_ref, 'component:')
               AND substr(entity_ref, strpos(entity_ref, '/') + 1) = $2
             ORDER BY applied_at DESC LIMIT 1",
            team,
            service
        )
        .fetch_optional(pool)
        .await
        .map(|r| r.map(|r| (r.cluster, r.namespace))),
    )
}
