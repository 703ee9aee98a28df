//! The catalog on the wire: the list page with its facets, an entity's page,
//! locations and ingestion problems, and the paths of entity pages.

use serde::{Deserialize, Serialize};

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
    /// The git host it is read through (`github.com (github)`), for URL
    /// locations on a configured integration.
    #[serde(default)]
    pub integration: Option<String>,
    /// The discovery location that registered it, if one did.
    #[serde(default)]
    pub discovered_by: Option<String>,
}

/// A configured git host as platform admins see it (never its credential).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationView {
    /// `host` or `host:port`.
    pub host: String,
    /// `github`, `gitlab`…
    pub kind: String,
    /// The API root.
    pub api_base_url: String,
    /// Where the credential lives in Vault (a path, never the value), or
    /// that there is none.
    pub credential: String,
    /// Requests left in the host's rate-limit window, when it said.
    pub rate_remaining: Option<i64>,
    /// The window's size.
    pub rate_limit: Option<i64>,
    /// When the window resets (Unix seconds).
    pub rate_reset_at: Option<i64>,
    /// Set while Paved waits for the host's rate limit to reset (Unix seconds).
    pub limited_until: Option<i64>,
    /// Locations read through it.
    pub locations: usize,
    /// When the credential expires (Unix seconds), when the host said: a
    /// token's own expiry, or the current GitHub App installation token's.
    pub token_expires_at: Option<i64>,
    /// True when that is within 14 days and nothing renews it on its own.
    pub token_expires_soon: bool,
    /// True for GitHub Apps, whose installation tokens Paved renews itself.
    pub token_renewed: bool,
}

/// The outcome of "Test connection".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// Whether the host accepted the credential.
    pub ok: bool,
    /// What happened, for people.
    pub message: String,
}
