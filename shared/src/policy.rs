//! Policy as code on the wire: the policies in force with their actions at
//! each enforcement point, recorded violations, exceptions and playground
//! results, as `/api/policy/v1` and the Policies page speak them.

use serde::{Deserialize, Serialize};

/// Where a policy is enforced.
pub const POINTS: [&str; 3] = ["scaffolder", "ci", "admission"];

/// A constraint (or plain Rego namespace) in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyView {
    /// The constraint's name (or the Rego namespace).
    pub name: String,
    /// The constraint's kind (its template), or `Rego`.
    pub kind: String,
    /// The template's title.
    pub title: String,
    /// What it refuses.
    pub description: String,
    /// The owner declared on the template (`paved.dev/owner`), a catalog reference.
    pub owner: Option<String>,
    /// The action at the scaffolder, CI and admission (`deny`, `warn`,
    /// `dryrun`, or `null` where it does not apply), in [`POINTS`] order.
    pub actions: Vec<Option<String>>,
    /// The kinds it matches, as `group/Kind` (`*` for all).
    pub matches: Vec<String>,
    /// Excluded namespaces.
    pub excluded_namespaces: Vec<String>,
    /// Violations recorded in the last 7 days.
    pub recent_violations: i64,
}

/// One recorded violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViolationView {
    pub id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    /// `scaffolder`, `ci`, `admission` or `audit`.
    pub point: String,
    /// `deny`, `warn`, `dryrun`, `error` or `excepted`.
    pub action: String,
    pub policy: String,
    pub kind: String,
    /// `Kind/namespace/name`.
    pub object: String,
    pub namespace: String,
    pub message: String,
    /// `file:line`, a task, or the admission request's uid.
    pub source: String,
    pub team: Option<String>,
}

/// A page of violations, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ViolationPage {
    pub items: Vec<ViolationView>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<i64>,
    /// All recorded violations matching the filter.
    pub total: i64,
}

/// An exception: one constraint does not apply to objects of a namespace
/// (optionally only those whose name matches) until it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExceptionView {
    pub id: i64,
    pub policy: String,
    pub namespace: String,
    /// A name or a `prefix*` / `*suffix` pattern; `*` for every object.
    pub object_name: String,
    /// The owning team.
    pub team: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub created_by: String,
    pub created_at: String,
    /// `active`, `expired` or `revoked`.
    pub state: String,
}

/// What an admin asks for when granting an exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewException {
    pub policy: String,
    pub namespace: String,
    #[serde(default)]
    pub object_name: Option<String>,
    pub team: String,
    pub reason: String,
    /// Days from now, 1 to 365.
    pub days: u32,
}

/// One finding of a check, where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckFinding {
    /// The line the object starts on (from 1).
    pub line: usize,
    /// The document's index in its file (from 0).
    pub document: usize,
    /// `Kind/namespace/name`.
    pub object: String,
    pub policy: String,
    /// `deny`, `warn`, `dryrun`, `error` or `excepted`.
    pub action: String,
    pub message: String,
}

/// A check of pasted or published manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckReport {
    /// Kubernetes objects checked.
    pub objects: usize,
    pub findings: Vec<CheckFinding>,
    /// Whether anything blocks (a `deny` or an `error`).
    pub blocked: bool,
}

/// The Policies page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoliciesPage {
    pub policies: Vec<PolicyView>,
    pub violations: ViolationPage,
    pub exceptions: Vec<ExceptionView>,
    /// Where the policies were loaded from.
    pub sources: Vec<String>,
    /// Whether the viewer may grant and revoke exceptions.
    pub can_administer: bool,
    /// Whether the viewer may read recorded violations (admins and PMs).
    pub can_view_violations: bool,
    /// Teams an exception may be owned by.
    pub teams: Vec<String>,
}
