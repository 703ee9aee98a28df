//! Catalog storage: locations, entities, fields, relations and problems in
//! SQLite, and applying a crawl (upserts, orphans, conflicts) in short steps.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Sqlite, SqlitePool};

use super::crawl::{crawl, Crawl, Problem};
use super::source::{Sources, Target};
use crate::auth::{authorize, Action, Principal};
use crate::{audit, now_unix, CoreError};

/// A registered location as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationInfo {
    /// UUID.
    pub id: String,
    /// `url` or `file`.
    pub kind: String,
    /// The URL or path.
    pub target: String,
    /// Who registered it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last refresh.
    pub last_refresh_at: Option<i64>,
    /// `pending`, `ok`, `problems` or `failed`.
    pub status: String,
    /// Entities it provides.
    pub entity_count: i64,
    /// Problems at the last refresh.
    pub problem_count: i64,
}

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshReport {
    /// Entities new to the catalog.
    pub added: usize,
    /// Entities whose content changed.
    pub updated: usize,
    /// Entities unchanged.
    pub unchanged: usize,
    /// Entities no longer in the source (kept, marked orphan).
    pub orphaned: usize,
    /// Problems found (including conflicts).
    pub problems: Vec<Problem>,
}

/// Registers a location (platform admins) and ingests it at once. With
/// `dry_run`, only crawls and reports what would be added.
pub async fn register_location(
    pool: &SqlitePool,
    sources: &Sources,
    caller: &Principal,
    kind: &str,
    target: &str,
    dry_run: bool,
) -> Result<(Option<LocationInfo>, Crawl), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    register_location_as(pool, sources, &caller.actor(), kind, target, dry_run).await
}

/// Registers a location without the admin check, for callers that decided
/// already (the scaffolder, running a template admins registered).
pub async fn register_location_as(
    pool: &SqlitePool,
    sources: &Sources,
    actor: &str,
    kind: &str,
    target: &str,
    dry_run: bool,
) -> Result<(Option<LocationInfo>, Crawl), CoreError> {
    let checked = check_target(sources, kind, target)?;
    if dry_run {
        if let Target::Discovery(url, kind) = &checked {
            let scan = discover_preview(sources, kind, url).await;
            return Ok((None, scan));
        }
        return Ok((None, crawl(sources, checked).await));
    }
    let (kind, target) = (checked.kind(), checked.raw());
    let id = insert_location(
        pool,
        kind,
        &target,
        None,
        actor,
        "catalog.location.register",
        json!({"type": kind, "target": target}),
    )
    .await
    .map_err(|e| match e {
        CoreError::Conflict(_) => CoreError::Conflict(format!(
            "the location {kind}:{target} is already registered"
        )),
        other => other,
    })?;
    let found = match &checked {
        Target::Discovery(url, kind) => {
            let report = refresh_discovery(pool, sources, &id, kind, url).await?;
            Crawl {
                entities: Vec::new(),
                problems: report.problems,
                files: None,
            }
        }
        _ => {
            let (found, result) =
                apply_settled(pool, sources, &id, crawl(sources, checked).await).await;
            result?;
            found
        }
    };
    let info = location(pool, &id).await?;
    Ok((Some(info), found))
}

/// What a discovery location would find, without registering anything.
async fn discover_preview(sources: &Sources, kind: &str, url: &url::Url) -> Crawl {
    let problems = match super::discovery::parse(kind, url) {
        Ok(pattern) => {
            let scan = super::discovery::scan(sources, url, &pattern, &Default::default()).await;
            let mut merged = Crawl::default();
            for file in scan.found {
                let found = crawl(sources, Target::Url(file)).await;
                merged.entities.extend(found.entities);
                merged.problems.extend(found.problems);
            }
            merged.problems.extend(scan.problems);
            return merged;
        }
        Err(message) => message,
    };
    Crawl {
        entities: Vec::new(),
        problems: vec![Problem {
            source: url.to_string(),
            document: None,
            entity_ref: None,
            field: None,
            message: problems,
        }],
        files: None,
    }
}

/// Refreshes a discovery location: lists the repositories, registers a
/// `url` location (created by `discovery:<id>`) for each new one holding the
/// file, refreshes every one found (at most four at a time), and keeps the
/// scan's own problems on the discovery location.
async fn refresh_discovery(
    pool: &SqlitePool,
    sources: &Sources,
    id: &str,
    kind: &str,
    url: &url::Url,
) -> Result<RefreshReport, CoreError> {
    use futures_util::stream::{self, StreamExt};
    let pattern = super::discovery::parse(kind, url).map_err(|message| CoreError::Invalid {
        field: "target",
        message,
    })?;
    let creator = format!("discovery:{id}");
    let children: std::collections::HashMap<String, String> = locations(pool)
        .await?
        .into_iter()
        .filter(|l| l.created_by == creator && l.kind == "url")
        .map(|l| (l.target, l.id))
        .collect();
    let known = children.keys().cloned().collect();
    let scan = super::discovery::scan(sources, url, &pattern, &known).await;
    let mut ids = Vec::new();
    for file in &scan.found {
        let target = file.to_string();
        let child = match children.get(&target) {
            Some(child) => child.clone(),
            None => {
                insert_location(
                    pool,
                    "url",
                    &target,
                    None,
                    &creator,
                    "catalog.location.discover",
                    json!({"type": "url", "target": target, "discovered_by": id}),
                )
                .await?
            }
        };
        ids.push(child);
    }
    let refreshed = stream::iter(ids.into_iter().map(|child: String| async move {
        let result = Box::pin(refresh_location(pool, sources, &child)).await;
        (child, result)
    }))
    .buffer_unordered(super::discovery::PARALLEL_READS)
    .collect::<Vec<_>>()
    .await;
    for (child, result) in refreshed {
        if let Err(e) = result {
            tracing::warn!(location = %child, error = %e, "refreshing a discovered location failed");
        }
    }
    tracing::info!(
        location = %id,
        repositories = scan.repositories,
        archived = scan.archived,
        with_file = scan.found.len(),
        "discovery scanned"
    );
    apply(
        pool,
        id,
        Crawl {
            entities: Vec::new(),
            problems: scan.problems,
            files: None,
        },
    )
    .await
    .1
}

/// Imports pasted YAML (platform admins) as a location of its own, named
/// `name`, and ingests it at once; with `dry_run`, only reports.
pub async fn import_pasted(
    pool: &SqlitePool,
    sources: &Sources,
    caller: &Principal,
    name: &str,
    yaml: &str,
    dry_run: bool,
) -> Result<(Option<LocationInfo>, Crawl), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::Invalid {
            field: "name",
            message: "give the import a name of 1 to 100 characters".into(),
        });
    }
    if yaml.trim().is_empty() {
        return Err(CoreError::Invalid {
            field: "yaml",
            message: "paste at least one entity".into(),
        });
    }
    if yaml.len() > sources.limits.max_bytes {
        return Err(CoreError::Invalid {
            field: "yaml",
            message: format!(
                "the YAML is {} KB; the limit is {} KB",
                yaml.len() / 1024,
                sources.limits.max_bytes / 1024
            ),
        });
    }
    let target = Target::Pasted {
        name: name.to_owned(),
        content: yaml.to_owned(),
    };
    let found = crawl(sources, target).await;
    if dry_run {
        return Ok((None, found));
    }
    let audit_after = json!({"type": "pasted", "name": name, "bytes": yaml.len()});
    let id = insert_location(
        pool,
        "pasted",
        name,
        Some(yaml),
        &caller.actor(),
        "catalog.location.import",
        audit_after,
    )
    .await
    .map_err(|e| match e {
        CoreError::Conflict(_) => CoreError::Conflict(format!(
            "an import named “{name}” already exists; pick another name"
        )),
        other => other,
    })?;
    let (found, result) = apply(pool, &id, found).await;
    result?;
    Ok((Some(location(pool, &id).await?), found))
}

/// Reads YAML as the catalog would, without storing anything.
pub async fn preview_yaml(sources: &Sources, name: &str, yaml: &str) -> Crawl {
    crawl(
        sources,
        Target::Pasted {
            name: name.to_owned(),
            content: yaml.to_owned(),
        },
    )
    .await
}

/// Registers the `catalog-info.yaml` of a repository the scaffolder just
/// published, as a location holding that YAML and named after the file.
/// Registering the same name again (a retried task) replaces its YAML.
pub async fn register_scaffolded(
    pool: &SqlitePool,
    sources: &Sources,
    actor: &str,
    name: &str,
    yaml: &str,
    team: Option<&str>,
) -> Result<String, CoreError> {
    let found = preview_yaml(sources, name, yaml).await;
    let existing = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM catalog_locations WHERE type = 'pasted' AND target = ?1"#,
        name
    )
    .fetch_optional(pool)
    .await?;
    let id = match existing {
        Some(id) => {
            sqlx::query!(
                "UPDATE catalog_locations SET content = ?2 WHERE id = ?1",
                id,
                yaml
            )
            .execute(pool)
            .await?;
            id
        }
        None => {
            insert_location(
                pool,
                "pasted",
                name,
                Some(yaml),
                actor,
                "catalog.location.scaffold",
                json!({"type": "pasted", "name": name, "bytes": yaml.len()}),
            )
            .await?
        }
    };
    sqlx::query!(
        "UPDATE catalog_locations SET team = ?2 WHERE id = ?1",
        id,
        team
    )
    .execute(pool)
    .await?;
    apply_settled(pool, sources, &id, found).await.1?;
    Ok(id)
}

/// Registers the `catalog-info.yaml` a golden path published to a git host
/// as a `url` location (so refreshes read the repository) for `team`; a
/// retried task finds the location it registered. Returns the location id.
pub async fn register_scaffolded_url(
    pool: &SqlitePool,
    sources: &Sources,
    actor: &str,
    url: &str,
    team: Option<&str>,
) -> Result<String, CoreError> {
    let id = find_or_insert(
        pool,
        sources,
        "url",
        url,
        actor,
        "catalog.location.scaffold",
    )
    .await?;
    sqlx::query!(
        "UPDATE catalog_locations SET team = ?2 WHERE id = ?1",
        id,
        team
    )
    .execute(pool)
    .await?;
    refresh_location(pool, sources, &id).await?;
    Ok(id)
}

/// The id of the location `kind:target` (checked as registration does),
/// inserting it with its audit entry by `actor` when it is new.
async fn find_or_insert(
    pool: &SqlitePool,
    sources: &Sources,
    kind: &str,
    target: &str,
    actor: &str,
    action: &str,
) -> Result<String, CoreError> {
    let checked = check_target(sources, kind, target)?;
    let (kind, target) = (checked.kind(), checked.raw());
    let existing = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM catalog_locations WHERE type = ?1 AND target = ?2"#,
        kind,
        target
    )
    .fetch_optional(pool)
    .await?;
    match existing {
        Some(id) => Ok(id),
        None => {
            insert_location(
                pool,
                kind,
                &target,
                None,
                actor,
                action,
                json!({"type": kind, "target": target}),
            )
            .await
        }
    }
}

/// The locations a push to `branch` of `https://{host}/{full_name}`
/// changes: its `url` locations on that branch; when it has none, the
/// discovery locations of its owner (the push may have added the file).
pub async fn locations_for_push(
    pool: &SqlitePool,
    host: &str,
    full_name: &str,
    branch: &str,
) -> Result<Vec<String>, CoreError> {
    let all = locations(pool).await?;
    let prefix = format!("https://{host}/{full_name}/blob/{branch}/").to_ascii_lowercase();
    let direct: Vec<String> = all
        .iter()
        .filter(|l| l.kind == "url" && l.target.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l.id.clone())
        .collect();
    if !direct.is_empty() {
        return Ok(direct);
    }
    let owner = full_name.split('/').next().unwrap_or_default();
    let owner_prefix = format!("https://{host}/{owner}/").to_ascii_lowercase();
    Ok(all
        .iter()
        .filter(|l| {
            l.kind == "github-discovery" && l.target.to_ascii_lowercase().starts_with(&owner_prefix)
        })
        .map(|l| l.id.clone())
        .collect())
}

/// Registers a location from configuration (`PAVED_CATALOG_LOCATIONS`) if it
/// is not registered yet, then refreshes it. Returns the location id.
pub async fn ensure_location(
    pool: &SqlitePool,
    sources: &Sources,
    kind: &str,
    target: &str,
) -> Result<String, CoreError> {
    let id = find_or_insert(
        pool,
        sources,
        kind,
        target,
        "system:config",
        "catalog.location.register",
    )
    .await?;
    refresh_location(pool, sources, &id).await?;
    Ok(id)
}

/// `kind:target` checked as registration checks it, a refusal naming the target.
fn check_target(sources: &Sources, kind: &str, target: &str) -> Result<Target, CoreError> {
    sources
        .check(kind, target)
        .map_err(|message| CoreError::Invalid {
            field: "target",
            message,
        })
}

/// Inserts a location row and its audit entry in one transaction; returns
/// the new id. A location already registered is a [`CoreError::Conflict`].
async fn insert_location(
    pool: &SqlitePool,
    kind: &str,
    target: &str,
    content: Option<&str>,
    actor: &str,
    action: &str,
    audit_after: Value,
) -> Result<String, CoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        "INSERT INTO catalog_locations (id, type, target, content, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        id,
        kind,
        target,
        content,
        actor,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor,
        action,
        &format!("location:{id}"),
        None,
        Some(audit_after),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Re-reads a location and applies what it holds now.
pub async fn refresh_location(
    pool: &SqlitePool,
    sources: &Sources,
    id: &str,
) -> Result<RefreshReport, CoreError> {
    let info = location(pool, id).await?;
    if super::discovery::is_discovery(&info.kind) {
        let url = url::Url::parse(&info.target).map_err(|e| CoreError::Invalid {
            field: "target",
            message: e.to_string(),
        })?;
        return refresh_discovery(pool, sources, id, &info.kind, &url).await;
    }
    let checked = if info.kind == "pasted" {
        let content =
            sqlx::query_scalar!("SELECT content FROM catalog_locations WHERE id = ?1", id)
                .fetch_one(pool)
                .await?
                .unwrap_or_default();
        Ok(Target::Pasted {
            name: info.target.clone(),
            content,
        })
    } else {
        sources.check(&info.kind, &info.target)
    };
    if checked.is_ok() && info.status == "ok" {
        if let Some(entities) = sources.unchanged_since_settled(id).await {
            if info.entity_count == entities as i64 {
                // Nothing the location read has changed: nothing to parse or
                // write, unless its last apply was left half-way.
                let now = now_unix();
                let settled = sqlx::query!(
                    "UPDATE catalog_locations SET last_refresh_at = ?2 WHERE id = ?1 AND apply_pending = 0",
                    id,
                    now
                )
                .execute(pool)
                .await?
                .rows_affected();
                if settled == 1 {
                    return Ok(RefreshReport {
                        unchanged: entities,
                        ..RefreshReport::default()
                    });
                }
            }
        }
    }
    let found = match checked {
        Ok(target) => crawl(sources, target).await,
        Err(message) => Crawl {
            entities: Vec::new(),
            problems: vec![Problem {
                source: info.target.clone(),
                document: None,
                entity_ref: None,
                field: None,
                message,
            }],
            files: None,
        },
    };
    apply_settled(pool, sources, id, found).await.1
}

/// [`apply`], then remembers what the crawl read when it was clean, so the
/// next refresh of an unchanged location re-parses nothing.
async fn apply_settled(
    pool: &SqlitePool,
    sources: &Sources,
    id: &str,
    found: Crawl,
) -> (Crawl, Result<RefreshReport, CoreError>) {
    let (found, result) = apply(pool, id, found).await;
    if let Ok(report) = &result {
        let clean = report.problems.is_empty();
        sources.settle(
            id,
            found.files.clone().filter(|_| clean),
            found.entities.len(),
        );
    }
    (found, result)
}

/// The id of the location that provides `entity_ref` (`None` for an orphan);
/// not found when the catalog has no such entity.
pub async fn location_id_of(
    pool: &SqlitePool,
    entity_ref: &str,
) -> Result<Option<String>, CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    let row = sqlx::query!(
        "SELECT location_id FROM catalog_entities WHERE entity_ref = ?1",
        lower
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("entity {entity_ref}")))?;
    Ok(row.location_id)
}

/// Refreshes every location (the periodic job and `POST /refresh` without an entity).
pub async fn refresh_all(pool: &SqlitePool, sources: &Sources) -> Result<usize, CoreError> {
    let all = locations(pool).await?;
    let parents: std::collections::HashSet<String> = all
        .iter()
        .filter(|l| super::discovery::is_discovery(&l.kind))
        .map(|l| format!("discovery:{}", l.id))
        .collect();
    // A discovered location is refreshed by its discovery location's scan.
    let mut ordered: Vec<&LocationInfo> = all
        .iter()
        .filter(|l| !parents.contains(&l.created_by))
        .collect();
    ordered.sort_by_key(|l| l.created_at);
    let ids: Vec<String> = ordered.into_iter().map(|l| l.id.clone()).collect();
    for id in &ids {
        if let Err(e) = refresh_location(pool, sources, id).await {
            tracing::warn!(location = %id, error = %e, "catalog refresh failed");
        }
    }
    Ok(ids.len())
}

/// Applies a crawl to location `location_id`: upserts its entities (keeping
/// uids), marks vanished ones as orphans, refuses entities another location
/// already provides (first owner kept), and replaces the location's problems.
///
/// The entities are written in steps, each its own short transaction of
/// rounds of 200 entities for about [`STEP_HOLD`], with a pause between
/// steps, so a 100,000-entity location never holds SQLite's one write lock
/// for more than a step: budget holds, scaffolder claims and other
/// refreshes get in between. One apply runs per
/// location at a time (`apply_token`), and `apply_pending` is set from the
/// first step to the last, so an apply interrupted by a crash is finished
/// at the next start ([`resume_interrupted`]). The apply runs in a task of
/// its own, so a caller that goes away (a closed request) cannot stop it
/// half-way. Gives the crawl back with the report.
pub async fn apply(
    pool: &SqlitePool,
    location_id: &str,
    found: Crawl,
) -> (Crawl, Result<RefreshReport, CoreError>) {
    let found = std::sync::Arc::new(found);
    let task = tokio::spawn({
        let (pool, id, found) = (pool.clone(), location_id.to_owned(), found.clone());
        async move { apply_in_steps(&pool, &id, &found, Pace::default()).await }
    });
    let result = task.await.unwrap_or_else(|e| {
        tracing::error!(location = %location_id, error = %e, "applying a catalog refresh stopped");
        Err(CoreError::Unavailable(
            "the refresh stopped unexpectedly; it is retried at the next refresh".into(),
        ))
    });
    // The task has ended (tokio drops a task's future before its output is
    // read), so this is the crawl's only holder.
    let found = std::sync::Arc::try_unwrap(found).unwrap_or_default();
    (found, result)
}

/// How long one step of an apply holds SQLite's write lock: rounds of 200
/// entities are added to a step until it has held the lock this long.
/// Longer steps mean longer waits for other writers; shorter ones more
/// commits, each rewriting the index pages its step touched (steps of one
/// round made a 132k-entity ingestion 50% slower).
const STEP_HOLD: std::time::Duration = std::time::Duration::from_millis(250);

/// How an apply is paced: how long a step holds the write lock, and (tests)
/// after how many steps to stop as a crash would.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    pub hold: std::time::Duration,
    pub stop_after: Option<usize>,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            hold: STEP_HOLD,
            stop_after: None,
        }
    }
}

/// The pause between two steps of an apply, in which writers waiting for
/// SQLite's write lock take it (Paved's connections retry every
/// millisecond: `db::retry_every_millisecond_when_busy`).
const STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// How long an apply waits for another apply of the same location to end.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// [`apply`]'s work: claims the location, then writes on one connection
/// without the memory map; a failed write gives the claim back and leaves
/// the location pending.
pub(crate) async fn apply_in_steps(
    pool: &SqlitePool,
    location_id: &str,
    found: &Crawl,
    pace: Pace,
) -> Result<RefreshReport, CoreError> {
    // Claimed on the pool: waiting for another apply of this location holds
    // no connection.
    let token = uuid::Uuid::new_v4().to_string();
    claim(pool, location_id, &token).await?;
    let result = write_claimed(pool, location_id, found, &token, pace).await;
    if result.is_err() {
        // The location stays pending (half-applied): the next refresh or
        // start applies it whole. Only the claim is given back.
        if let Err(e) = sqlx::query!(
            "UPDATE catalog_locations SET apply_token = NULL WHERE id = ?1 AND apply_token = ?2",
            location_id,
            token
        )
        .execute(pool)
        .await
        {
            tracing::warn!(location = %location_id, error = %e, "releasing a failed refresh's claim failed");
        }
    }
    result
}

/// Writes a claimed location on one connection without the memory map.
async fn write_claimed(
    pool: &SqlitePool,
    location_id: &str,
    found: &Crawl,
    token: &str,
    pace: Pace,
) -> Result<RefreshReport, CoreError> {
    // The writer works without the memory map: pages it maps stay resident
    // (a 13k-entity ingestion touches 100 MB of them), while its own page
    // cache is bounded and nothing reads concurrently on this connection.
    let mut guard = MapOff(Some(pool.acquire().await?));
    let conn = guard.0.as_mut().expect("just set");
    sqlx::query("PRAGMA mmap_size = 0")
        .execute(&mut **conn)
        .await?;
    let result = apply_claimed(conn, location_id, found, token, pace).await;
    if let Ok(report) = &result {
        if report.added + report.updated + report.orphaned > 500 {
            // On this connection, still without the map: ANALYZE reads every
            // entity page, which through the map would stay resident.
            after_large_change(conn).await;
        }
    }
    match sqlx::query(crate::db::RESTORE_MMAP)
        .execute(&mut **conn)
        .await
    {
        // Restored: the connection goes back to the pool as it came.
        Ok(_) => drop(guard.0.take()),
        Err(e) => tracing::warn!(error = %e, "restoring the memory map after a refresh failed"),
    }
    drop(guard);
    result
}

/// A pooled connection whose memory map is off: closed rather than returned
/// to the pool unless the map was restored.
struct MapOff(Option<sqlx::pool::PoolConnection<Sqlite>>);

impl Drop for MapOff {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

/// Forgets the claims of a process that ended without finishing its
/// applies (run once at start, before anything applies).
pub async fn release_stale_claims(pool: &SqlitePool) -> Result<(), CoreError> {
    sqlx::query!("UPDATE catalog_locations SET apply_token = NULL WHERE apply_token IS NOT NULL")
        .execute(pool)
        .await?;
    Ok(())
}

/// Finishes the applies a crash interrupted (run at start, after
/// [`release_stale_claims`]): refreshes every location left half-applied.
/// Returns how many were refreshed.
pub async fn resume_interrupted(pool: &SqlitePool, sources: &Sources) -> Result<usize, CoreError> {
    let pending = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM catalog_locations WHERE apply_pending = 1 ORDER BY created_at"#
    )
    .fetch_all(pool)
    .await?;
    for id in &pending {
        tracing::info!(location = %id, "finishing a catalog refresh interrupted by a restart");
        if let Err(e) = refresh_location(pool, sources, id).await {
            tracing::warn!(location = %id, error = %e, "finishing an interrupted catalog refresh failed");
        }
    }
    Ok(pending.len())
}

/// Claims location `location_id` for one apply, waiting while another runs;
/// marks it pending in the same statement.
async fn claim(pool: &SqlitePool, location_id: &str, token: &str) -> Result<(), CoreError> {
    let started = std::time::Instant::now();
    loop {
        let claimed = sqlx::query!(
            "UPDATE catalog_locations SET apply_token = ?2, apply_pending = 1 WHERE id = ?1 AND apply_token IS NULL",
            location_id,
            token
        )
        .execute(pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(());
        }
        let exists = sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM catalog_locations WHERE id = ?1"#,
            location_id
        )
        .fetch_optional(pool)
        .await?;
        if exists.is_none() {
            return Err(CoreError::NotFound(format!("location {location_id}")));
        }
        if started.elapsed() > APPLY_WAIT {
            return Err(CoreError::Unavailable(
                "another refresh of this location is still being written; try again later".into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn apply_claimed(
    conn: &mut sqlx::SqliteConnection,
    location_id: &str,
    found: &Crawl,
    token: &str,
    pace: Pace,
) -> Result<RefreshReport, CoreError> {
    use sqlx::Connection;
    let now = now_unix();
    let mut report = RefreshReport {
        problems: found.problems.clone(),
        ..RefreshReport::default()
    };
    // The references this crawl keeps for the location (its first copy of each).
    let mut kept: HashSet<String> = HashSet::new();
    let batches = found.entities.len().div_ceil(WRITE_BATCH);
    let mut steps = 0;
    let mut step_started: Option<std::time::Instant> = None;
    for (i, items) in found.entities.chunks(WRITE_BATCH).enumerate() {
        let started = match step_started {
            Some(started) => started,
            None => {
                if steps > 0 {
                    if pace.stop_after == Some(steps) {
                        return Err(CoreError::Unavailable("stopped half-way (test)".into()));
                    }
                    tokio::time::sleep(STEP_PAUSE).await;
                }
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                *step_started.insert(std::time::Instant::now())
            }
        };
        let mut written = apply_round(conn, location_id, items, now, &mut kept, &mut report).await;
        if written.is_ok() && (started.elapsed() >= pace.hold || i + 1 == batches) {
            written = sqlx::query("COMMIT")
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(CoreError::from);
            step_started = None;
            steps += 1;
        }
        if let Err(e) = written {
            // Nothing of this step stays; the location stays pending.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::debug!(error = %rollback, "rolling back a failed refresh step");
            }
            return Err(e);
        }
    }

    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Entities this location provided before but not now: kept as orphans.
    let kept_refs = Value::from(kept.into_iter().collect::<Vec<_>>()).to_string();
    report.orphaned = sqlx::query!(
        r#"UPDATE catalog_entities SET orphan = 1, updated_at = ?2
           WHERE location_id = ?1 AND orphan = 0
             AND entity_ref NOT IN (SELECT value FROM json_each(?3))"#,
        location_id,
        now,
        kept_refs
    )
    .execute(&mut *tx)
    .await?
    .rows_affected() as usize;
    drop(kept_refs);

    sqlx::query!(
        "DELETE FROM catalog_problems WHERE location_id = ?1",
        location_id
    )
    .execute(&mut *tx)
    .await?;
    for p in &report.problems {
        let document = p.document.map(|d| d as i64);
        sqlx::query!(
            "INSERT INTO catalog_problems (location_id, source, document, entity_ref, field, message, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            location_id,
            p.source,
            document,
            p.entity_ref,
            p.field,
            p.message,
            now
        )
        .execute(&mut *tx)
        .await?;
    }
    let status = if found.entities.is_empty() && !report.problems.is_empty() {
        "failed"
    } else if report.problems.is_empty() {
        "ok"
    } else {
        "problems"
    };
    let problem_count = report.problems.len() as i64;
    let finished = sqlx::query!(
        r#"UPDATE catalog_locations SET last_refresh_at = ?2, status = ?3, problem_count = ?4,
             entity_count = (SELECT COUNT(*) FROM catalog_entities WHERE location_id = ?1 AND orphan = 0),
             apply_token = NULL, apply_pending = 0
           WHERE id = ?1 AND apply_token = ?5"#,
        location_id,
        now,
        status,
        problem_count,
        token
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if finished != 1 {
        // The location was deleted (or its claim taken by a restart) meanwhile.
        return Err(CoreError::NotFound(format!("location {location_id}")));
    }
    tx.commit().await?;
    Ok(report)
}

/// One round of an apply, inside its step's transaction: decides for each
/// of `items` (new, changed, unchanged, a duplicate, another location's)
/// against what the catalog holds now, and writes the new and changed.
async fn apply_round(
    conn: &mut sqlx::SqliteConnection,
    location_id: &str,
    items: &[super::crawl::FoundEntity],
    now: i64,
    kept: &mut HashSet<String>,
    report: &mut RefreshReport,
) -> Result<(), CoreError> {
    // What the catalog holds now for this step's entities, whichever
    // location provides them (read inside the step's transaction).
    let refs = Value::from(
        items
            .iter()
            .map(|item| item.entity_ref.to_string())
            .collect::<Vec<_>>(),
    )
    .to_string();
    let current_of: HashMap<String, (String, Option<String>, String, i64)> = sqlx::query!(
        r#"SELECT entity_ref, uid AS "uid!", location_id, etag, orphan FROM catalog_entities
           WHERE entity_ref IN (SELECT value FROM json_each(?1))"#,
        refs
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.entity_ref, (r.uid, r.location_id, r.etag, r.orphan)))
    .collect();
    let mut batch: Vec<EntityWrite<'_>> = Vec::with_capacity(items.len());
    for item in items {
        let entity_ref = item.entity_ref.to_string();
        if !kept.insert(entity_ref.clone()) {
            report.problems.push(Problem {
                source: item.source.clone(),
                document: Some(item.document),
                entity_ref: Some(entity_ref),
                field: None,
                message: "this entity appears twice in this location; the first one is kept".into(),
            });
            continue;
        }
        let current = current_of.get(&entity_ref);
        if let Some((_, Some(owner), _, orphan)) = current {
            if owner != location_id && *orphan == 0 {
                let other = sqlx::query_scalar!(
                    "SELECT target FROM catalog_locations WHERE id = ?1",
                    owner
                )
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or_else(|| owner.clone());
                kept.remove(&entity_ref);
                report.problems.push(Problem {
                    source: item.source.clone(),
                    document: Some(item.document),
                    entity_ref: Some(entity_ref),
                    field: Some("metadata.name".into()),
                    message: format!("conflict: this entity is already provided by the location {other}; that first one is kept"),
                });
                continue;
            }
        }
        let uid = current
            .map(|c| c.0.clone())
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let etag = etag_of(item.body_text());
        let unchanged = matches!(current, Some((_, Some(owner), old_etag, 0)) if owner == location_id && *old_etag == etag);
        if unchanged {
            report.unchanged += 1;
            continue;
        }
        if current.is_some() {
            report.updated += 1;
        } else {
            report.added += 1;
        }
        batch.push(EntityWrite::new(current.is_none(), uid, item, etag));
    }
    write_entities(conn, location_id, &batch, now).await
}

/// Upkeep after a refresh that changed many entities.
async fn after_large_change(conn: &mut sqlx::SqliteConnection) {
    // The list's query plans pick between walking an order index and sorting
    // a filter's matches by how many entities each kind, type or owner has:
    // statistics SQLite only knows after ANALYZE (about 50 ms at 13k
    // entities). Other connections read statistics only with the schema, so
    // a throwaway table changes the schema and every connection re-plans.
    for statement in [
        "ANALYZE catalog_entities",
        "CREATE TABLE IF NOT EXISTS catalog_stats_epoch (x INTEGER)",
        "DROP TABLE IF EXISTS catalog_stats_epoch",
    ] {
        if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
            tracing::warn!(error = %e, "refreshing catalog statistics failed");
            break;
        }
    }
    // A big ingestion leaves a large WAL that every later read must search;
    // fold it back into the database now rather than at some later commit:
    // first a passive checkpoint, which copies while writers go on, then
    // the blocking one, which then has little left to copy.
    for statement in [
        "PRAGMA wal_checkpoint(PASSIVE)",
        "PRAGMA wal_checkpoint(TRUNCATE)",
    ] {
        if let Err(e) = sqlx::query(statement).execute(&mut *conn).await {
            tracing::warn!(error = %e, "WAL checkpoint after a large catalog refresh failed");
            break;
        }
    }
}

/// A stable hash of the entity's content (its compact JSON text).
fn etag_of(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..12])
}

/// Entities written per round of statements while applying a crawl.
const WRITE_BATCH: usize = 200;

/// One entity to insert or update, with its columns and filter fields worked out.
struct EntityWrite<'a> {
    is_new: bool,
    uid: String,
    entity_ref: String,
    kind: String,
    namespace: String,
    name: String,
    source: &'a str,
    body: String,
    etag: String,
    spec_type: Option<String>,
    lifecycle: Option<String>,
    owner_ref: Option<String>,
    title: Option<String>,
    description: Option<String>,
    fields: Vec<(String, String)>,
    relations: Vec<(String, String, String)>,
}

impl<'a> EntityWrite<'a> {
    fn new(is_new: bool, uid: String, entity: &'a super::crawl::FoundEntity, etag: String) -> Self {
        let source = entity.source.as_str();
        let mut body = entity.body();
        let relations = entity.relations(&body);
        if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("uid".into(), Value::String(uid.clone()));
            m.insert("etag".into(), Value::String(etag.clone()));
        }
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let mut fields = Vec::new();
        flatten(&body, "", &mut fields);
        for r in relations.iter().filter(|r| r.source == entity.entity_ref) {
            fields.push((
                format!("relations.{}", r.kind.to_ascii_lowercase()),
                r.target.to_string(),
            ));
        }
        fields.sort();
        fields.dedup();
        Self {
            is_new,
            entity_ref: entity.entity_ref.to_string(),
            kind: text(&body["kind"]).unwrap_or_default(),
            namespace: entity.entity_ref.namespace.clone(),
            name: text(&body["metadata"]["name"]).unwrap_or_default(),
            source,
            spec_type: text(&body["spec"]["type"]),
            lifecycle: text(&body["spec"]["lifecycle"]),
            owner_ref: relations
                .iter()
                .find(|r| r.kind == "ownedBy" && r.source == entity.entity_ref)
                .map(|r| r.target.to_string()),
            title: text(&body["metadata"]["title"]),
            description: text(&body["metadata"]["description"]),
            body: body.to_string(),
            uid,
            etag,
            fields,
            relations: relations
                .into_iter()
                .map(|r| (r.source.to_string(), r.kind, r.target.to_string()))
                .collect(),
        }
    }
}

/// Writes a batch of entities with a handful of multi-row statements:
/// ingestion speed is bounded by how many statements it runs.
async fn write_entities(
    conn: &mut sqlx::SqliteConnection,
    location_id: &str,
    batch: &[EntityWrite<'_>],
    now: i64,
) -> Result<(), CoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    // SQLite binds at most 32,766 parameters per statement.
    const MAX_PARAMS: usize = 32_000;
    for chunk in batch.chunks(MAX_PARAMS / 16) {
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO catalog_entities (uid, entity_ref, kind, namespace, name, location_id, source, body, etag, orphan, \
             spec_type, lifecycle, owner_ref, title, description, created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut row, e| {
            row.push_bind(&e.uid)
                .push_bind(&e.entity_ref)
                .push_bind(&e.kind)
                .push_bind(&e.namespace)
                .push_bind(&e.name)
                .push_bind(location_id)
                .push_bind(e.source)
                .push_bind(&e.body)
                .push_bind(&e.etag)
                .push("0")
                .push_bind(&e.spec_type)
                .push_bind(&e.lifecycle)
                .push_bind(&e.owner_ref)
                .push_bind(&e.title)
                .push_bind(&e.description)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(
            " ON CONFLICT (uid) DO UPDATE SET location_id = excluded.location_id, source = excluded.source, \
             body = excluded.body, etag = excluded.etag, orphan = 0, kind = excluded.kind, name = excluded.name, \
             spec_type = excluded.spec_type, lifecycle = excluded.lifecycle, owner_ref = excluded.owner_ref, \
             title = excluded.title, description = excluded.description, updated_at = excluded.updated_at",
        );
        // Row counts vary, so each text is new: not worth a place in the
        // connection's statement cache (a 10,000-row insert is a big program).
        qb.build().persistent(false).execute(&mut *conn).await?;
    }

    let updated: Vec<&str> = batch
        .iter()
        .filter(|e| !e.is_new)
        .map(|e| e.uid.as_str())
        .collect();
    if !updated.is_empty() {
        let uids = Value::from(updated).to_string();
        sqlx::query!(
            "DELETE FROM catalog_fields WHERE entity_uid IN (SELECT value FROM json_each(?1))",
            uids
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "DELETE FROM catalog_relations WHERE origin_uid IN (SELECT value FROM json_each(?1))",
            uids
        )
        .execute(&mut *conn)
        .await?;
    }

    let fields: Vec<(&str, &str, &str)> = batch
        .iter()
        .flat_map(|e| {
            e.fields
                .iter()
                .map(|(k, v)| (e.uid.as_str(), k.as_str(), v.as_str()))
        })
        .collect();
    for chunk in fields.chunks(MAX_PARAMS / 3) {
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO catalog_fields (entity_uid, key, value) ",
        );
        qb.push_values(chunk, |mut row, (uid, key, value)| {
            row.push_bind(*uid).push_bind(*key).push_bind(*value);
        });
        // Row counts vary, so each text is new: not worth a place in the
        // connection's statement cache (a 10,000-row insert is a big program).
        qb.build().persistent(false).execute(&mut *conn).await?;
    }
    let relations: Vec<(&str, &str, &str, &str)> = batch
        .iter()
        .flat_map(|e| {
            e.relations.iter().map(|(source_ref, kind, target_ref)| {
                (
                    e.uid.as_str(),
                    source_ref.as_str(),
                    kind.as_str(),
                    target_ref.as_str(),
                )
            })
        })
        .collect();
    for chunk in relations.chunks(MAX_PARAMS / 4) {
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO catalog_relations (origin_uid, source_ref, type, target_ref) ",
        );
        qb.push_values(chunk, |mut row, (uid, source_ref, kind, target_ref)| {
            row.push_bind(*uid)
                .push_bind(*source_ref)
                .push_bind(*kind)
                .push_bind(*target_ref);
        });
        // Row counts vary, so each text is new: not worth a place in the
        // connection's statement cache (a 10,000-row insert is a big program).
        qb.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Flattens leaves into lowercase `(key, value)` pairs for filtering, as
/// Backstage's search table does. Long values (definitions) are skipped.
fn flatten(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    const MAX_VALUE: usize = 200;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if prefix.is_empty() && (k == "relations" || k == "status") {
                    continue;
                }
                let key = if prefix.is_empty() {
                    k.to_ascii_lowercase()
                } else {
                    format!("{prefix}.{}", k.to_ascii_lowercase())
                };
                flatten(v, &key, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                if !item.is_object() && !item.is_array() {
                    flatten(item, prefix, out);
                }
            }
        }
        Value::String(s) if s.len() <= MAX_VALUE => {
            out.push((prefix.to_owned(), s.to_ascii_lowercase()))
        }
        Value::Number(n) => out.push((prefix.to_owned(), n.to_string())),
        Value::Bool(b) => out.push((prefix.to_owned(), b.to_string())),
        _ => {}
    }
}

/// One location.
pub async fn location(pool: &SqlitePool, id: &str) -> Result<LocationInfo, CoreError> {
    sqlx::query_as!(
        LocationInfo,
        r#"SELECT id AS "id!", type AS kind, target, created_by, created_at, last_refresh_at, status, entity_count, problem_count
           FROM catalog_locations WHERE id = ?1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("location {id}")))
}

/// All locations, oldest first.
pub async fn locations(pool: &SqlitePool) -> Result<Vec<LocationInfo>, CoreError> {
    Ok(sqlx::query_as!(
        LocationInfo,
        r#"SELECT id AS "id!", type AS kind, target, created_by, created_at, last_refresh_at, status, entity_count, problem_count
           FROM catalog_locations ORDER BY created_at, id"#
    )
    .fetch_all(pool)
    .await?)
}

/// A `catalog_problems` row, as the three problem queries read it.
struct ProblemRow {
    source: String,
    document: Option<i64>,
    entity_ref: Option<String>,
    field: Option<String>,
    message: String,
}

impl From<ProblemRow> for Problem {
    fn from(r: ProblemRow) -> Self {
        Problem {
            source: r.source,
            document: r.document.map(|d| d as usize),
            entity_ref: r.entity_ref,
            field: r.field,
            message: r.message,
        }
    }
}

/// The problems of one location's last refresh.
pub async fn location_problems(pool: &SqlitePool, id: &str) -> Result<Vec<Problem>, CoreError> {
    let rows = sqlx::query_as!(
        ProblemRow,
        "SELECT source, document, entity_ref, field, message FROM catalog_problems WHERE location_id = ?1 ORDER BY id",
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Problem::from).collect())
}

/// Unregisters a location (platform admins); the entities it provided go with it.
pub async fn delete_location(
    pool: &SqlitePool,
    caller: &Principal,
    id: &str,
) -> Result<(), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let info = location(pool, id).await?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!("DELETE FROM catalog_entities WHERE location_id = ?1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM catalog_locations WHERE id = ?1", id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &caller.actor(),
        "catalog.location.delete",
        &format!("location:{id}"),
        Some(json!({"type": info.kind, "target": info.target})),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes one entity (platform admins). It returns at the next refresh if its source still has it.
pub async fn delete_entity(
    pool: &SqlitePool,
    caller: &Principal,
    uid: &str,
) -> Result<(), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let entity_ref = sqlx::query_scalar!(
        "SELECT entity_ref FROM catalog_entities WHERE uid = ?1",
        uid
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("entity {uid}")))?;
    sqlx::query!("DELETE FROM catalog_entities WHERE uid = ?1", uid)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut *tx,
        &caller.actor(),
        "catalog.entity.delete",
        &entity_ref,
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A relation as the API shows it.
#[derive(Serialize)]
struct RelationOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "targetRef")]
    target_ref: &'a str,
    target: TargetOut<'a>,
}

#[derive(Serialize)]
struct TargetOut<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

/// The complete JSON of each entity with `uids`, in that order: the stored
/// body with `relations` spliced in (and the orphan annotation). Relations
/// for the whole page come back from SQLite as one packed row, since sqlx
/// hands rows over one at a time, and bodies are not parsed into trees.
pub async fn entities_json(pool: &SqlitePool, uids: &[String]) -> Result<Vec<String>, CoreError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
        "SELECT uid, entity_ref, body, orphan FROM catalog_entities WHERE uid IN (",
    );
    let mut separated = qb.separated(", ");
    for uid in uids {
        separated.push_bind(uid.as_str());
    }
    qb.push(")");
    let rows: Vec<(String, String, String, i64)> = qb.build_query_as().fetch_all(pool).await?;

    let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
        "SELECT json_group_array(json_array(source_ref, type, target_ref)) FROM \
         (SELECT DISTINCT source_ref, type, target_ref FROM catalog_relations WHERE source_ref IN (",
    );
    let mut separated = qb.separated(", ");
    for (_, entity_ref, _, _) in &rows {
        separated.push_bind(entity_ref.as_str());
    }
    qb.push(") ORDER BY source_ref, type, target_ref)");
    let packed: String = qb.build_query_scalar().fetch_one(pool).await?;
    let bad = |e: serde_json::Error| CoreError::Invalid {
        field: "body",
        message: e.to_string(),
    };
    let found: Vec<(String, String, String)> = serde_json::from_str(&packed).map_err(bad)?;
    let mut relations: HashMap<&str, Vec<RelationOut<'_>>> = HashMap::new();
    for (source_ref, kind, target_ref) in &found {
        let (target_kind, rest) = target_ref.split_once(':').unwrap_or(("", target_ref));
        let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
        relations
            .entry(source_ref.as_str())
            .or_default()
            .push(RelationOut {
                kind,
                target_ref,
                target: TargetOut {
                    kind: target_kind,
                    namespace,
                    name,
                },
            });
    }

    let mut by_uid: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for (uid, entity_ref, body, orphan) in &rows {
        let rels = serde_json::to_string(
            relations
                .get(entity_ref.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
        .map_err(bad)?;
        let json = if *orphan != 0 {
            let mut value: Value = serde_json::from_str(body).map_err(bad)?;
            if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                let annotations = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = annotations.as_object_mut() {
                    a.insert("backstage.io/orphan".into(), Value::String("true".into()));
                }
            }
            value["relations"] = serde_json::from_str(&rels).map_err(bad)?;
            value.to_string()
        } else {
            // Bodies are compact JSON objects written by this module: splice before the closing brace.
            let trimmed = body.trim_end();
            let open = trimmed
                .strip_suffix('}')
                .ok_or_else(|| CoreError::Invalid {
                    field: "body",
                    message: "not a JSON object".into(),
                })?;
            format!("{open},\"relations\":{rels}}}")
        };
        by_uid.insert(uid.clone(), json);
    }
    Ok(uids.iter().filter_map(|uid| by_uid.remove(uid)).collect())
}

async fn one_entity(
    pool: &SqlitePool,
    uid: Option<String>,
    what: &str,
) -> Result<Value, CoreError> {
    let uid = uid.ok_or_else(|| CoreError::NotFound(format!("entity {what}")))?;
    let json = entities_json(pool, std::slice::from_ref(&uid))
        .await?
        .pop()
        .ok_or_else(|| CoreError::NotFound(format!("entity {what}")))?;
    serde_json::from_str(&json).map_err(|e| CoreError::Invalid {
        field: "body",
        message: e.to_string(),
    })
}

/// Which location provides an entity (its target: file, URL or pasted
/// name), `None` when the entity is not in the catalog. An entity whose
/// location was removed answers that it is still held.
pub async fn location_of(pool: &SqlitePool, entity_ref: &str) -> Result<Option<String>, CoreError> {
    let key = entity_ref.to_ascii_lowercase();
    let row = sqlx::query!(
        r#"SELECT l.target AS "target?" FROM catalog_entities e LEFT JOIN catalog_locations l ON l.id = e.location_id WHERE e.entity_ref = ?1"#,
        key
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        r.target
            .unwrap_or_else(|| "a location that was removed".into())
    }))
}

/// The entity `kind:namespace/name`, complete with relations.
pub async fn entity_by_ref(pool: &SqlitePool, entity_ref: &str) -> Result<Value, CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    let uid = sqlx::query_scalar!(
        "SELECT uid FROM catalog_entities WHERE entity_ref = ?1",
        lower
    )
    .fetch_optional(pool)
    .await?;
    one_entity(pool, uid, entity_ref).await
}

/// The entity with `uid`, complete with relations.
pub async fn entity_by_uid(pool: &SqlitePool, uid: &str) -> Result<Value, CoreError> {
    let found = sqlx::query_scalar!("SELECT uid FROM catalog_entities WHERE uid = ?1", uid)
        .fetch_optional(pool)
        .await?;
    one_entity(pool, found, uid).await
}

/// Problems reported for entities owned by `owner_ref` (the team "problems" list).
pub async fn problems_for_owner(
    pool: &SqlitePool,
    owner_ref: &str,
) -> Result<Vec<Problem>, CoreError> {
    let owner = owner_ref.to_ascii_lowercase();
    let rows = sqlx::query_as!(
        ProblemRow,
        r#"SELECT p.source, p.document, p.entity_ref, p.field, p.message FROM catalog_problems p
           WHERE p.entity_ref IN (SELECT entity_ref FROM catalog_entities WHERE owner_ref = ?1)
              OR p.source IN (SELECT source FROM catalog_entities WHERE owner_ref = ?1)
           ORDER BY p.id"#,
        owner
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Problem::from).collect())
}

/// The location target a [`Target`] was registered as, for tests and the API.
pub fn describe_target(target: &Target) -> (String, String) {
    (target.kind().to_owned(), target.raw())
}

/// Where an entity comes from and how its last ingestion went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityStatus {
    /// The file or URL it was read from.
    pub source: String,
    /// The registered location that provides it.
    pub location_id: Option<String>,
    /// That location's target.
    pub location_target: Option<String>,
    /// Unix seconds of that location's last refresh.
    pub last_refresh_at: Option<i64>,
    /// Gone from its source.
    pub orphan: bool,
    /// Problems reported for this entity at the last refresh.
    pub problems: Vec<Problem>,
}

/// The ingestion status of `entity_ref`.
pub async fn entity_status(pool: &SqlitePool, entity_ref: &str) -> Result<EntityStatus, CoreError> {
    let lower = entity_ref.to_ascii_lowercase();
    let row = sqlx::query!(
        r#"SELECT e.source, e.location_id, e.orphan, l.target AS "target?", l.last_refresh_at AS "last_refresh_at?"
           FROM catalog_entities e LEFT JOIN catalog_locations l ON l.id = e.location_id WHERE e.entity_ref = ?1"#,
        lower
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("entity {entity_ref}")))?;
    let problems = sqlx::query_as!(
        ProblemRow,
        "SELECT source, document, entity_ref, field, message FROM catalog_problems WHERE entity_ref = ?1 ORDER BY id",
        lower
    )
    .fetch_all(pool)
    .await?
    .into_iter()
        .map(Problem::from)
    .collect();
    Ok(EntityStatus {
        source: row.source,
        location_id: row.location_id,
        location_target: row.target,
        last_refresh_at: row.last_refresh_at,
        orphan: row.orphan != 0,
        problems,
    })
}
