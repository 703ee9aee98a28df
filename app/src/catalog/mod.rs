//! The catalog feature in the UI: wire types and server functions here, the
//! list page in `list.rs`, the entity page in `entity.rs`, locations in
//! `locations.rs`.

pub mod entity;
pub mod list;
pub mod locations;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Rows per catalog page.
pub const PAGE_SIZE: i64 = 25;

/// The facets the list offers, as (filter key, label).
pub const FACETS: [(&str, &str); 6] = [
    ("kind", "Kind"),
    ("spec.type", "Type"),
    ("relations.ownedby", "Owner"),
    ("spec.system", "System"),
    ("spec.lifecycle", "Lifecycle"),
    ("metadata.tags", "Tag"),
];

/// What the list shows (all from the URL, so every view is shareable).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    /// Words to search for.
    pub q: String,
    /// Chosen facet values, as (facet key, value).
    pub filters: Vec<(String, String)>,
    /// Only entities owned by my teams.
    pub mine: bool,
    /// Only entities I starred.
    pub starred: bool,
    /// 0-based page.
    pub page: i64,
    /// `name`, `kind`, `type`, `owner` or `lifecycle`.
    pub sort: String,
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Kind as authored.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Title or name.
    pub title: String,
    /// Description.
    pub description: String,
    /// `spec.type`.
    pub spec_type: String,
    /// `spec.lifecycle`.
    pub lifecycle: String,
    /// Owner reference.
    pub owner: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Gone from its source.
    pub orphan: bool,
}

impl Row {
    /// The entity page's path.
    pub fn href(&self) -> String {
        entity_href(&self.kind, &self.namespace, &self.name)
    }
}

/// `/catalog/<kind>/<namespace>/<name>` for an entity.
pub fn entity_href(kind: &str, namespace: &str, name: &str) -> String {
    format!(
        "/catalog/{}/{}/{}",
        kind.to_ascii_lowercase(),
        namespace,
        name
    )
}

/// The path of the entity a `kind:namespace/name` reference names.
pub fn ref_href(entity_ref: &str) -> String {
    let (kind, rest) = entity_ref
        .split_once(':')
        .unwrap_or(("component", entity_ref));
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    entity_href(kind, namespace, name)
}

/// A page of the list with facet counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage {
    /// Rows.
    pub rows: Vec<Row>,
    /// All matches.
    pub total: i64,
    /// Facet key → (value, count).
    pub facets: Vec<(String, Vec<(String, i64)>)>,
}

/// An ingestion problem as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemView {
    /// File or URL.
    pub source: String,
    /// 1-based document number, when inside one.
    pub document: Option<usize>,
    /// Entity reference, when known.
    pub entity_ref: Option<String>,
    /// Field path.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

#[cfg(feature = "ssr")]
impl From<paved_core::catalog::crawl::Problem> for ProblemView {
    fn from(p: paved_core::catalog::crawl::Problem) -> Self {
        Self {
            source: p.source,
            document: p.document.map(|d| d + 1),
            entity_ref: p.entity_ref,
            field: p.field,
            message: p.message,
        }
    }
}

/// Everything the entity page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityView {
    /// Kind as authored.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Title or name.
    pub title: String,
    /// Description.
    pub description: String,
    /// `spec.type`.
    pub spec_type: String,
    /// `spec.lifecycle`.
    pub lifecycle: String,
    /// Owner reference.
    pub owner: String,
    /// Tags.
    pub tags: Vec<String>,
    /// (url, title) links.
    pub links: Vec<(String, String)>,
    /// Annotations.
    pub annotations: Vec<(String, String)>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// (relation type, target reference), sorted.
    pub relations: Vec<(String, String)>,
    /// An API's definition text.
    pub definition: Option<String>,
    /// OpenAPI operations, when the definition is OpenAPI.
    pub operations: Vec<(String, String, String)>,
    /// The entity as YAML (for export).
    pub yaml: String,
    /// Gone from its source.
    pub orphan: bool,
    /// Where it was read from.
    pub source: String,
    /// Last refresh of its location.
    pub last_refresh_at: Option<i64>,
    /// Problems at the last refresh.
    pub problems: Vec<ProblemView>,
    /// Whether the viewer starred it.
    pub starred: bool,
    /// What the owners keep in the portal.
    pub portal: PortalView,
    /// Whether the viewer may edit the portal fields.
    pub can_edit: bool,
}

/// Portal-managed fields of an entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalView {
    /// On-call contact.
    pub oncall: String,
    /// Support link.
    pub support_url: String,
    /// Notes.
    pub notes: String,
    /// Who changed them last.
    pub updated_by: Option<String>,
    /// When.
    pub updated_at: Option<i64>,
}

/// A registered location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationView {
    /// Id.
    pub id: String,
    /// `file` or `url`.
    pub kind: String,
    /// Path or URL.
    pub target: String,
    /// `pending`, `ok`, `problems`, `failed`.
    pub status: String,
    /// Entities it provides.
    pub entity_count: i64,
    /// Problems at the last refresh.
    pub problem_count: i64,
    /// Unix seconds.
    pub last_refresh_at: Option<i64>,
    /// Its problems (detail view only).
    pub problems: Vec<ProblemView>,
}

#[cfg(feature = "ssr")]
impl From<paved_core::catalog::store::LocationInfo> for LocationView {
    fn from(l: paved_core::catalog::store::LocationInfo) -> Self {
        Self {
            id: l.id,
            kind: l.kind,
            target: l.target,
            status: l.status,
            entity_count: l.entity_count,
            problem_count: l.problem_count,
            last_refresh_at: l.last_refresh_at,
            problems: Vec::new(),
        }
    }
}

/// One page of the catalog list; every signed-in user may read.
#[server(endpoint = "catalog_list")]
pub async fn catalog_list(query: ListQuery) -> Result<ListPage, AppError> {
    use paved_core::catalog::query::{summaries, Filter, Query};
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let mut set: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in &query.filters {
        if !FACETS.iter().any(|(k, _)| k == key) {
            return Err(crate::ssr::fail(AppError::Invalid {
                field: "filters".into(),
                message: format!("cannot filter by {key}"),
            }));
        }
        set.push((key.clone(), vec![value.to_ascii_lowercase()]));
    }
    if query.mine {
        let owners: Vec<String> = user
            .teams
            .keys()
            .map(|t| format!("group:default/{t}"))
            .collect();
        set.push((
            "relations.ownedby".into(),
            if owners.is_empty() {
                vec!["-".into()]
            } else {
                owners
            },
        ));
    }
    let filter = Filter {
        sets: if set.is_empty() { vec![] } else { vec![set] },
    };
    let order = match query.sort.as_str() {
        "kind" => "kind",
        "type" => "spec.type",
        "owner" => "spec.owner",
        "lifecycle" => "spec.lifecycle",
        _ => "metadata.name",
    };
    let only = if query.starred {
        Some(paved_core::catalog::stars::starred(&core.db, &user).await?)
    } else {
        None
    };
    let q = Query {
        filter: filter.clone(),
        full_text: Some(query.q.clone()).filter(|t| !t.trim().is_empty()),
        order: vec![(order.to_owned(), true)],
        offset: query.page.max(0) * PAGE_SIZE,
        limit: PAGE_SIZE,
        only,
    };
    let (rows, total) = summaries(&core.db, &q).await?;
    let keys: Vec<String> = FACETS.iter().map(|(k, _)| (*k).to_owned()).collect();
    let counts = core.facet_cache.facets(&core.db, &keys, &filter).await?;
    Ok(ListPage {
        rows: rows
            .into_iter()
            .map(|r| Row {
                title: r.title.unwrap_or_else(|| r.name.clone()),
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
                description: r.description.unwrap_or_default(),
                spec_type: r.spec_type.unwrap_or_default(),
                lifecycle: r.lifecycle.unwrap_or_default(),
                owner: r.owner_ref.unwrap_or_default(),
                tags: r.tags,
                orphan: r.orphan,
            })
            .collect(),
        total,
        facets: keys
            .into_iter()
            .map(|k| {
                let v = counts.get(&k).cloned().unwrap_or_default();
                (k, v.into_iter().take(30).collect())
            })
            .collect(),
    })
}

/// One entity for its page; every signed-in user may read.
#[server(endpoint = "catalog_entity")]
pub async fn catalog_entity(
    kind: String,
    namespace: String,
    name: String,
) -> Result<EntityView, AppError> {
    use paved_core::catalog::{api_operations, export_yaml, store};
    use serde_json::Value;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let entity_ref = format!("{kind}:{namespace}/{name}");
    let portal = paved_core::catalog::portal::get(&core.db, &entity_ref).await?;
    let starred = paved_core::catalog::stars::starred(&core.db, &user)
        .await?
        .contains(&entity_ref.to_ascii_lowercase());
    let e = store::entity_by_ref(&core.db, &entity_ref).await?;
    let status = store::entity_status(&core.db, &entity_ref).await?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default()
    };
    let definition = e["spec"]["definition"].as_str().map(str::to_owned);
    let operations = definition
        .as_deref()
        .map(api_operations)
        .unwrap_or_default();
    let mut relations: Vec<(String, String)> = e["relations"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| (s(&r["type"]), s(&r["targetRef"])))
                .collect()
        })
        .unwrap_or_default();
    relations.sort();
    let owner_ref = relations
        .iter()
        .find(|(t, _)| t == "ownedBy")
        .map(|(_, r)| r.clone());
    Ok(EntityView {
        kind: s(&e["kind"]),
        namespace: s(&e["metadata"]["namespace"]),
        name: s(&e["metadata"]["name"]),
        title: e["metadata"]["title"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| s(&e["metadata"]["name"])),
        description: s(&e["metadata"]["description"]),
        spec_type: s(&e["spec"]["type"]),
        lifecycle: s(&e["spec"]["lifecycle"]),
        owner: relations
            .iter()
            .find(|(t, _)| t == "ownedBy")
            .map(|(_, r)| r.clone())
            .unwrap_or_default(),
        tags: e["metadata"]["tags"]
            .as_array()
            .map(|t| t.iter().map(s).collect())
            .unwrap_or_default(),
        links: e["metadata"]["links"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|l| {
                        (
                            s(&l["url"]),
                            l["title"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| s(&l["url"])),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        annotations: pairs(&e["metadata"]["annotations"]),
        labels: pairs(&e["metadata"]["labels"]),
        relations,
        definition,
        operations: operations
            .into_iter()
            .map(|o| (o.method, o.path, o.summary))
            .collect(),
        yaml: export_yaml(&e),
        orphan: status.orphan,
        source: status.source,
        last_refresh_at: status.last_refresh_at,
        problems: status.problems.into_iter().map(Into::into).collect(),
        starred,
        can_edit: paved_core::catalog::portal::can_edit(&user, owner_ref.as_deref()),
        portal: PortalView {
            oncall: portal.oncall,
            support_url: portal.support_url,
            notes: portal.notes,
            updated_by: portal.updated_by,
            updated_at: portal.updated_at,
        },
    })
}

/// Saves an entity's portal fields (owners and platform admins only) and answers what was stored.
#[server(endpoint = "catalog_save_portal_fields")]
pub async fn save_portal_fields(
    entity_ref: String,
    oncall: String,
    support_url: String,
    notes: String,
) -> Result<PortalView, AppError> {
    use paved_core::catalog::portal;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let fields = portal::PortalFields {
        oncall,
        support_url,
        notes,
        ..Default::default()
    };
    portal::set(&core.db, &user, &entity_ref, &fields).await?;
    let saved = portal::get(&core.db, &entity_ref).await?;
    Ok(PortalView {
        oncall: saved.oncall,
        support_url: saved.support_url,
        notes: saved.notes,
        updated_by: saved.updated_by,
        updated_at: saved.updated_at,
    })
}

/// Stars or unstars an entity for the caller; answers whether it is now starred.
#[server(endpoint = "catalog_toggle_star")]
pub async fn toggle_star(entity_ref: String) -> Result<bool, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::stars::toggle(&core.db, &user, &entity_ref).await?)
}

/// Imports pasted YAML as a location of its own; platform admins only.
#[server(endpoint = "catalog_import_yaml")]
pub async fn import_yaml(name: String, yaml: String) -> Result<LocationView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let (info, _) = paved_core::catalog::store::import_pasted(
        &core.db,
        &core.catalog,
        &user,
        &name,
        &yaml,
        false,
    )
    .await?;
    let info = info.ok_or(AppError::Internal)?;
    let mut view: LocationView = info.into();
    view.problems = paved_core::catalog::store::location_problems(&core.db, &view.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(view)
}

/// Registered locations (everyone reads, so owners can see why ingestion failed).
#[server(endpoint = "catalog_locations")]
pub async fn catalog_locations() -> Result<Vec<LocationView>, AppError> {
    crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::store::locations(&core.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// One location with its problems.
#[server(endpoint = "catalog_location")]
pub async fn catalog_location(id: String) -> Result<LocationView, AppError> {
    use paved_core::catalog::store;
    crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let mut view: LocationView = store::location(&core.db, &id).await?.into();
    view.problems = store::location_problems(&core.db, &id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(view)
}

/// Registers a location; platform admins only.
#[server(endpoint = "catalog_register_location")]
pub async fn register_location(kind: String, target: String) -> Result<LocationView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let (info, _) = paved_core::catalog::store::register_location(
        &core.db,
        &core.catalog,
        &user,
        &kind,
        target.trim(),
        false,
    )
    .await?;
    info.map(Into::into).ok_or(AppError::Internal)
}

/// Re-reads a location now (anyone signed in: it only re-reads the source).
#[server(endpoint = "catalog_refresh_location")]
pub async fn refresh_location(id: String) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    core.refresher
        .refresh(&core.db, &core.catalog, &user, &id)
        .await?;
    Ok(())
}

/// Ingestion problems of entities a team owns (members, PMs, admins).
#[server(endpoint = "team_problems")]
pub async fn team_problems(team: String) -> Result<Vec<ProblemView>, AppError> {
    use paved_core::auth::{authorize, Action};
    let user = crate::ssr::require_user()?;
    authorize(&user, Action::ViewTeam(&team))?;
    let core = crate::ssr::core()?;
    Ok(
        paved_core::catalog::store::problems_for_owner(&core.db, &format!("group:default/{team}"))
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    )
}

/// Splits `text` into (piece, is a match) around the search words, for
/// highlighting without handing HTML to the browser.
pub fn highlight(text: &str, query: &str) -> Vec<(String, bool)> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() || text.is_empty() {
        return vec![(text.to_owned(), false)];
    }
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return vec![(text.to_owned(), false)];
    }
    let mut marks = vec![false; text.len()];
    for w in &words {
        let mut start = 0;
        while let Some(i) = lower[start..].find(w.as_str()) {
            let at = start + i;
            marks[at..at + w.len()].iter_mut().for_each(|m| *m = true);
            start = at + w.len();
        }
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    for (i, c) in text.char_indices() {
        let m = marks[i];
        match out.last_mut() {
            Some((s, last)) if *last == m => s.push(c),
            _ => out.push((c.to_string(), m)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_marks_search_words() {
        assert_eq!(
            highlight("Wayback Archive", "archive"),
            vec![
                ("Wayback ".to_string(), false),
                ("Archive".to_string(), true)
            ]
        );
        assert_eq!(highlight("abc", ""), vec![("abc".to_string(), false)]);
        assert_eq!(
            ref_href("api:default/petstore"),
            "/catalog/api/default/petstore"
        );
    }
}
