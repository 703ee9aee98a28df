//! Reading what attribution needs: a component's repositories (from its
//! catalog annotations), its deployments and incidents, and the history of
//! its repositories. Mapping is read at the time of asking, so a component
//! registered or re-annotated later gets its events at once.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::SqlitePool;

use super::compute::{CommitInfo, DeployRow, IncidentRow, MergeInfo, RepoGraph, Scope};
use super::events::repo_key;
use crate::CoreError;

/// The annotation naming a monorepo component's folder.
pub const PATH_ANNOTATION: &str = "paved.dev/source-path";

/// The repositories an entity's annotations name: `github.com/project-slug`,
/// `gitlab.com/project-slug` (on the host of `backstage.io/source-location`
/// when that names one) and `backstage.io/source-location` itself.
pub fn repos_of(entity: &Value) -> (Vec<String>, Option<String>) {
    let annotations = &entity["metadata"]["annotations"];
    let get = |k: &str| {
        annotations[k]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let mut repos = Vec::new();
    let location = get("backstage.io/source-location")
        .map(|l| l.strip_prefix("url:").unwrap_or(l))
        .and_then(|l| url::Url::parse(l).ok());
    let location_host = location
        .as_ref()
        .and_then(crate::integrations::config::host_key);
    if let Some(slug) = get("github.com/project-slug") {
        let host = location_host
            .clone()
            .filter(|h| h != "gitlab.com")
            .unwrap_or_else(|| "github.com".into());
        repos.extend(repo_key(&format!("https://{host}/{slug}")));
    }
    if let Some(slug) = get("gitlab.com/project-slug") {
        let host = location_host
            .clone()
            .filter(|h| h != "github.com")
            .unwrap_or_else(|| "gitlab.com".into());
        repos.extend(repo_key(&format!("https://{host}/{slug}")));
    }
    if let Some(url) = &location {
        // The repository part: before `/-/` (GitLab), or the first two segments after `/tree/`-style paths.
        let path = url.path();
        let repo_path = if let Some(at) = path.find("/-/") {
            &path[..at]
        } else {
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            match segments
                .iter()
                .position(|s| matches!(*s, "tree" | "blob" | "src"))
            {
                Some(at) if at >= 2 => &path[..segments[..at].join("/").len() + 1],
                _ => path,
            }
        };
        if let Some(host) = &location_host {
            repos.extend(repo_key(&format!("{}://{host}{repo_path}", url.scheme())));
        }
    }
    repos.sort();
    repos.dedup();
    let prefix = get(PATH_ANNOTATION).map(|p| {
        let p = p.trim_matches('/');
        format!("{p}/")
    });
    (repos, prefix)
}

/// The scope of `component:namespace/name`, or `NotFound`.
pub async fn component_scope(pool: &SqlitePool, entity_ref: &str) -> Result<Scope, CoreError> {
    let body = sqlx::query_scalar!(
        "SELECT body FROM catalog_entities WHERE entity_ref = ?1 AND kind_key = 'component'",
        entity_ref
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("component {entity_ref}")))?;
    let entity: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (repos, path_prefix) = repos_of(&entity);
    Ok(Scope {
        component: entity_ref.to_owned(),
        repos,
        path_prefix,
    })
}

/// The scopes of every component `team` owns (`group:default/<team>`).
pub async fn team_scopes(pool: &SqlitePool, team: &str) -> Result<Vec<Scope>, CoreError> {
    let owner = format!("group:default/{team}");
    let rows = sqlx::query!(
        r#"SELECT entity_ref AS "entity_ref!", body FROM catalog_entities
           WHERE owner_ref = ?1 AND kind_key = 'component' ORDER BY entity_ref"#,
        owner
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let entity: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let (repos, path_prefix) = repos_of(&entity);
            Scope {
                component: r.entity_ref,
                repos,
                path_prefix,
            }
        })
        .collect())
}

/// What one component's attribution reads.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Its deployments up to the end of the window.
    pub deployments: Vec<DeployRow>,
    /// Its incidents up to the end of the window (not withdrawn).
    pub incidents: Vec<IncidentRow>,
}

/// Loads `scope`'s deployments and incidents finished before `to`. (`+`
/// keeps SQLite from reading every row without a component through the
/// component index: the repository index finds them.)
pub async fn inputs(pool: &SqlitePool, scope: &Scope, to: i64) -> Result<Inputs, CoreError> {
    let repos = serde_json::to_string(&scope.repos).unwrap_or_else(|_| "[]".into());
    let deployments = sqlx::query!(
        r#"SELECT id AS "id!", key, repo, component_ref, environment, sha, status, finished_at, rework, fixes, title
           FROM outcome_deployments
           WHERE finished_at < ?3
             AND (component_ref = ?1 OR (+component_ref IS NULL AND repo IN (SELECT value FROM json_each(?2))))
           ORDER BY finished_at, id"#,
        scope.component,
        repos,
        to
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| DeployRow {
        id: r.id,
        key: r.key,
        repo: r.repo,
        component_ref: r.component_ref,
        environment: r.environment,
        sha: r.sha,
        status: r.status,
        finished_at: r.finished_at,
        rework: r.rework,
        fixes: r.fixes,
        title: r.title,
    })
    .collect();
    let incidents = sqlx::query!(
        r#"SELECT id AS "id!", key, repo, component_ref, title, url, created_at, resolved_at, cause_sha, cause_deployment
           FROM outcome_incidents
           WHERE withdrawn = 0 AND created_at < ?3
             AND (component_ref = ?1 OR (+component_ref IS NULL AND repo IN (SELECT value FROM json_each(?2))))
           ORDER BY created_at, id"#,
        scope.component,
        repos,
        to
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| IncidentRow {
        id: r.id,
        key: r.key,
        repo: r.repo,
        component_ref: r.component_ref,
        title: r.title,
        url: r.url,
        created_at: r.created_at,
        resolved_at: r.resolved_at,
        cause_sha: r.cause_sha,
        cause_deployment: r.cause_deployment,
    })
    .collect();
    Ok(Inputs {
        deployments,
        incidents,
    })
}

/// The history of `repo` as events told it.
pub async fn graph(pool: &SqlitePool, repo: &str) -> Result<RepoGraph, CoreError> {
    let mut out = RepoGraph::default();
    for r in sqlx::query!(
        "SELECT sha, committed_at, files FROM outcome_commits WHERE repo = ?1",
        repo
    )
    .fetch_all(pool)
    .await?
    {
        out.commits.insert(
            r.sha,
            CommitInfo {
                at: r.committed_at,
                files: r.files.and_then(|f| serde_json::from_str(&f).ok()),
            },
        );
    }
    for r in sqlx::query!(
        "SELECT sha, parent FROM outcome_parents WHERE repo = ?1",
        repo
    )
    .fetch_all(pool)
    .await?
    {
        out.parents.entry(r.sha).or_default().push(r.parent);
    }
    for r in sqlx::query!(
        "SELECT merge_sha, head_sha, number FROM outcome_merges WHERE repo = ?1",
        repo
    )
    .fetch_all(pool)
    .await?
    {
        out.merges.insert(
            r.merge_sha,
            MergeInfo {
                head_sha: r.head_sha,
                number: r.number,
            },
        );
    }
    Ok(out)
}

/// Repository histories kept in memory between reads: a year of one
/// repository is thousands of commits, and every Outcomes page and DORA call
/// walks them. A delivery that tells commits or merges of a repository drops
/// its entry; at most [`GraphCache::CAPACITY`] repositories are kept (the
/// least recently read go first).
#[derive(Debug, Default)]
pub struct GraphCache {
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    graphs: HashMap<String, (std::sync::Arc<RepoGraph>, u64)>,
    /// Bumped by every invalidation, so a read that began before one never
    /// stores what it loaded.
    generation: u64,
    clock: u64,
}

impl GraphCache {
    /// The most repositories kept.
    pub const CAPACITY: usize = 128;

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets `repo`'s history (its events changed).
    pub fn invalidate(&self, repo: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.graphs.remove(repo);
    }

    fn get(&self, repo: &str) -> Result<std::sync::Arc<RepoGraph>, u64> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let generation = inner.generation;
        match inner.graphs.get_mut(repo) {
            Some((graph, used)) => {
                *used = now;
                Ok(graph.clone())
            }
            None => Err(generation),
        }
    }

    fn put(&self, repo: &str, graph: std::sync::Arc<RepoGraph>, loaded_at: u64) {
        let mut inner = self.lock();
        if inner.generation != loaded_at {
            return;
        }
        if inner.graphs.len() >= Self::CAPACITY {
            if let Some(oldest) = inner
                .graphs
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                inner.graphs.remove(&oldest);
            }
        }
        let now = inner.clock;
        inner.graphs.insert(repo.to_owned(), (graph, now));
    }
}

/// The histories of every repository in `scopes`, through `cache`.
pub async fn graphs(
    pool: &SqlitePool,
    cache: &GraphCache,
    scopes: &[Scope],
) -> Result<HashMap<String, std::sync::Arc<RepoGraph>>, CoreError> {
    let mut out = HashMap::new();
    for repo in scopes.iter().flat_map(|s| &s.repos) {
        if out.contains_key(repo) {
            continue;
        }
        let graph = match cache.get(repo) {
            Ok(graph) => graph,
            Err(generation) => {
                let graph = std::sync::Arc::new(graph(pool, repo).await?);
                cache.put(repo, graph.clone(), generation);
                graph
            }
        };
        out.insert(repo.clone(), graph);
    }
    Ok(out)
}

/// Events whose repository maps to no component and that name none that
/// exists: (kind, repo or component, count, latest), for admins to map.
pub async fn unmapped(pool: &SqlitePool) -> Result<Vec<Unmapped>, CoreError> {
    let mapped: std::collections::HashSet<String> =
        sqlx::query_scalar!("SELECT body FROM catalog_entities WHERE kind_key = 'component'")
            .fetch_all(pool)
            .await?
            .into_iter()
            .filter_map(|b| serde_json::from_str::<Value>(&b).ok())
            .flat_map(|e| repos_of(&e).0)
            .collect();
    let rows = sqlx::query!(
        r#"SELECT 'deployment' AS "kind!: String", repo, component_ref, COUNT(*) AS "count!: i64", MAX(finished_at) AS "latest!: i64"
           FROM outcome_deployments
           WHERE component_ref IS NULL OR component_ref NOT IN (SELECT entity_ref FROM catalog_entities)
           GROUP BY repo, component_ref
           UNION ALL
           SELECT 'incident', repo, component_ref, COUNT(*), MAX(created_at)
           FROM outcome_incidents
           WHERE withdrawn = 0 AND (component_ref IS NULL OR component_ref NOT IN (SELECT entity_ref FROM catalog_entities))
           GROUP BY repo, component_ref"#
    )
    .fetch_all(pool)
    .await?;
    let mut out: Vec<Unmapped> = rows
        .into_iter()
        .filter(|r| {
            r.component_ref.is_some() || !r.repo.as_ref().is_some_and(|repo| mapped.contains(repo))
        })
        .map(|r| Unmapped {
            kind: r.kind,
            repo: r.repo,
            component: r.component_ref,
            count: r.count,
            latest: r.latest,
        })
        .collect();
    out.sort_by_key(|u| std::cmp::Reverse(u.latest));
    Ok(out)
}

pub use paved_shared::outcomes::Unmapped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_cache_forgets_on_change_and_never_keeps_a_stale_read() {
        let cache = GraphCache::default();
        let generation = cache.get("r").unwrap_err();
        cache.put("r", std::sync::Arc::new(RepoGraph::default()), generation);
        assert!(cache.get("r").is_ok());
        cache.invalidate("r");
        assert!(cache.get("r").is_err());
        // A load that began before an invalidation is not kept.
        let before = cache.get("s").unwrap_err();
        cache.invalidate("s");
        cache.put("s", std::sync::Arc::new(RepoGraph::default()), before);
        assert!(cache.get("s").is_err());
        // Bounded: the least recently read goes first.
        for i in 0..GraphCache::CAPACITY + 1 {
            let g = cache.get(&i.to_string()).unwrap_err();
            cache.put(&i.to_string(), std::sync::Arc::new(RepoGraph::default()), g);
        }
        assert!(cache.get("0").is_err());
        assert!(cache.get(&GraphCache::CAPACITY.to_string()).is_ok());
    }
    use serde_json::json;

    #[test]
    fn repositories_come_from_slugs_and_source_locations() {
        let entity = json!({"metadata": {"annotations": {
            "github.com/project-slug": "Acme/payments",
            "backstage.io/source-location": "url:https://github.com/acme/payments/tree/main/services/api/",
        }}});
        assert_eq!(
            repos_of(&entity),
            (vec!["github.com/acme/payments".to_owned()], None)
        );
        let gitlab = json!({"metadata": {"annotations": {
            "gitlab.com/project-slug": "group/sub/proj",
            "backstage.io/source-location": "url:https://gitlab.example.com/group/sub/proj/-/tree/main",
            "paved.dev/source-path": "/services/api/",
        }}});
        assert_eq!(
            repos_of(&gitlab),
            (
                vec!["gitlab.example.com/group/sub/proj".to_owned()],
                Some("services/api/".to_owned())
            )
        );
        let hostile = json!({"metadata": {"annotations": {"backstage.io/source-location": "url:javascript:alert(1)"}}});
        assert_eq!(repos_of(&hostile).0, Vec::<String>::new());
    }
}
