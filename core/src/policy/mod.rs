//! Policy as code in the portal: the policies in force (loaded once from
//! `PAVED_POLICY_DIRS` with [`paved_policy`]), the admission webhook's
//! decisions, checks of manifests (the scaffolder's `policy:check`, the
//! playground, CI reports), recorded violations and exceptions.

pub mod config;
pub mod log;
pub mod metrics;

use std::sync::{Arc, RwLock};

use paved_policy::docs::{object_ref, SourceFile};
use paved_policy::set::{Context, Finding, PolicySet, Severity};
use paved_policy::{EnforcementAction, EnforcementPoint, Review};
use paved_shared::auth::{authorize, Action, Principal};
use paved_shared::policy::{
    CheckFinding, CheckReport, ExceptionView, NewException, PoliciesPage, PolicyView,
    ViolationPage, ViolationView, POINTS,
};
use serde_json::{json, Value};

use crate::{audit, now_unix, CoreError, CoreState};
pub use log::{ViolationLog, ViolationRow};

/// The largest AdmissionReview the webhook reads (the API server sends at most 3 MiB objects).
pub const MAX_ADMISSION_BYTES: usize = 4 * 1024 * 1024;
/// The most manifest text one check reads.
pub const MAX_CHECK_BYTES: usize = 2 * 1024 * 1024;

/// Why the policies could not be loaded at start.
#[derive(Debug, thiserror::Error)]
#[error("PAVED_POLICY_DIRS: {0}")]
pub struct PolicyStartError(pub String);

/// An active exception, kept in memory for the hot path.
#[derive(Debug, Clone)]
struct ActiveException {
    policy: String,
    namespace: String,
    object_name: String,
    expires_at: i64,
}

/// The policies in force and what goes with them.
pub struct Policies {
    set: RwLock<Arc<PolicySet>>,
    sources: Vec<String>,
    dirs: Vec<std::path::PathBuf>,
    exceptions: RwLock<Arc<Vec<ActiveException>>>,
    /// Where violations are written, off the request path.
    pub log: ViolationLog,
    /// Decisions, latency and violations for `/metrics`.
    pub metrics: metrics::PolicyMetrics,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("sources", &self.sources)
            .finish()
    }
}

impl Policies {
    /// Load (and compile) the policies of the configured folders; start the
    /// violation writer; read the active exceptions.
    pub async fn start(
        db: &sqlx::SqlitePool,
        config: &config::PolicyConfig,
    ) -> Result<Policies, PolicyStartError> {
        let dirs: Vec<_> = config
            .dirs
            .iter()
            .filter(|d| config.explicit || d.exists())
            .cloned()
            .collect();
        let set = load(&dirs).map_err(PolicyStartError)?;
        let policies = Policies {
            set: RwLock::new(Arc::new(set)),
            sources: dirs.iter().map(|d| d.display().to_string()).collect(),
            dirs,
            exceptions: RwLock::default(),
            log: ViolationLog::start(db.clone(), config.violations_kept),
            metrics: Default::default(),
        };
        policies
            .reload_exceptions(db)
            .await
            .map_err(|e| PolicyStartError(format!("reading exceptions: {e}")))?;
        policies
            .refresh_parameters(db)
            .await
            .map_err(|e| PolicyStartError(format!("reading the services with secrets: {e}")))?;
        Ok(policies)
    }

    /// Fill the parameters Paved keeps for constraints annotated
    /// `paved.dev/parameters`: `vault-services` is every service Paved
    /// provisioned secrets for (its namespace, service account and Vault
    /// role). Called at start and after each provisioning.
    pub async fn refresh_parameters(&self, db: &sqlx::SqlitePool) -> Result<(), CoreError> {
        let current = self.current();
        let dynamic = |c: &paved_policy::Constraint| {
            c.source
                .pointer("/metadata/annotations/paved.dev~1parameters")
                .and_then(Value::as_str)
                == Some("vault-services")
        };
        if !current.constraints.iter().any(dynamic) {
            return Ok(());
        }
        let rows = paved_store::secrets::workload_roles(db.into()).await?;
        let services: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                json!({"service": r.holder, "namespace": r.namespace,
                       "serviceAccount": r.service_account, "role": r.role})
            })
            .collect();
        let mut next = (*current).clone();
        let mut changed = false;
        for c in next.constraints.iter_mut().filter(|c| dynamic(c)) {
            if c.parameters.get("services") == Some(&Value::Array(services.clone())) {
                continue;
            }
            c.parameters["services"] = Value::Array(services.clone());
            c.parameters_rego = paved_policy::template::to_rego(&c.parameters)
                .map_err(|e| CoreError::Unavailable(format!("policy parameters: {e}")))?;
            c.source["spec"]["parameters"] = c.parameters.clone();
            changed = true;
        }
        if changed {
            *self.set.write().expect("policy lock") = Arc::new(next);
        }
        Ok(())
    }

    /// Read the policy folders again (platform admins), audited. A policy
    /// that does not load or compile leaves the policies in force as they
    /// were and is answered with its file and line.
    pub async fn reload(
        &self,
        db: &sqlx::SqlitePool,
        principal: &Principal,
    ) -> Result<usize, CoreError> {
        authorize(principal, Action::AdministerPlatform).map_err(|f| CoreError::Forbidden(f.0))?;
        let dirs = self.dirs.clone();
        let set = tokio::task::spawn_blocking(move || load(&dirs))
            .await
            .map_err(|e| CoreError::Unavailable(format!("reloading policies: {e}")))?
            .map_err(|message| CoreError::Invalid {
                field: "policies",
                message,
            })?;
        let count = set.len();
        *self.set.write().expect("policy lock") = Arc::new(set);
        self.refresh_parameters(db).await?;
        let mut conn = paved_store::Db::from(db).acquire().await?;
        audit::record(
            conn.conn(),
            &principal.actor(),
            "policy.reload",
            &self.sources.join(","),
            None,
            Some(json!({"policies": count})),
        )
        .await?;
        Ok(count)
    }

    /// The policies in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.set.read().expect("policy lock").clone()
    }

    /// Where the policies were loaded from.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Reads the exceptions in force again (after a change here or on another replica).
    pub async fn reload_exceptions(&self, db: &sqlx::SqlitePool) -> Result<(), CoreError> {
        let rows = paved_store::policy::unrevoked_exceptions(db.into()).await?;
        let list = rows
            .into_iter()
            .map(|r| ActiveException {
                policy: r.policy,
                namespace: r.namespace,
                object_name: r.object_name,
                expires_at: r.expires_at,
            })
            .collect();
        *self.exceptions.write().expect("exceptions lock") = Arc::new(list);
        Ok(())
    }

    /// Whether an unexpired exception covers this finding's object.
    fn excepted(&self, policy: &str, namespace: &str, name: &str, now: i64) -> bool {
        let list = self.exceptions.read().expect("exceptions lock").clone();
        list.iter().any(|e| {
            e.expires_at > now
                && e.policy == policy
                && e.namespace == namespace
                && paved_policy::matcher::Wildcard(e.object_name.clone()).matches(name)
        })
    }
}

fn load(dirs: &[std::path::PathBuf]) -> Result<PolicySet, String> {
    if dirs.is_empty() {
        return Ok(PolicySet::default());
    }
    PolicySet::load_paths(dirs).map_err(|e| e.to_string())
}

/// The action word recorded for a finding.
fn action_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Failure => "deny",
        Severity::Warning => "warn",
        Severity::Dryrun => "dryrun",
        Severity::Error => "error",
    }
}

/// The object's name, for exceptions (`generateName` when not yet named).
fn object_name(object: &Value) -> &str {
    let meta = object.get("metadata");
    meta.and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .or_else(|| {
            meta.and_then(|m| m.get("generateName"))
                .and_then(Value::as_str)
        })
        .unwrap_or("")
}

/// Turn findings into their effect, applying exceptions: a deny or warn
/// covered by an active exception becomes `excepted` (recorded, not enforced).
fn effective(
    policies: &Policies,
    findings: Vec<Finding>,
    namespace: &str,
    name: &str,
    now: i64,
) -> Vec<(Finding, &'static str)> {
    findings
        .into_iter()
        .map(|f| {
            let word = action_word(f.severity);
            let covered = matches!(f.severity, Severity::Failure | Severity::Warning)
                && policies.excepted(&f.policy, namespace, name, now);
            (f, if covered { "excepted" } else { word })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Admission

/// A malformed AdmissionReview, answered with code 400 (as controller-runtime does).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdmissionError(pub String);

/// Decide one AdmissionReview (v1 or v1beta1) with the policies in force at
/// the admission point: Gatekeeper's response (`allowed: false`, `status.code`
/// 403, reason `Forbidden`, `[constraint] msg` lines; warnings for `warn`,
/// code 299), `uid` and `apiVersion` echoed. The plain OPA admission form
/// (`package kubernetes.admission`) is consulted too.
pub fn admission_review(core: &CoreState, body: &[u8]) -> Result<Value, AdmissionError> {
    let mut review: Value = serde_json::from_slice(body)
        .map_err(|e| AdmissionError(format!("the body is not JSON: {e}")))?;
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if review.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(AdmissionError("expected kind AdmissionReview".into()));
    }
    if !matches!(
        api_version,
        "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
    ) {
        return Err(AdmissionError(format!(
            "unsupported apiVersion {api_version:?}: admission.k8s.io/v1 or v1beta1"
        )));
    }
    let request = review
        .get("request")
        .filter(|r| r.is_object())
        .ok_or_else(|| AdmissionError("missing request".into()))?;
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| AdmissionError("request.uid is required".into()))?
        .to_string();
    let has = |k: &str| request.get(k).is_some_and(|o| o.is_object());
    let operation = request
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !has("object") && !has("oldObject") {
        return Err(AdmissionError("no object or oldObject to review".into()));
    }
    if operation == "DELETE" && !has("oldObject") {
        return Err(AdmissionError(
            "oldObject cannot be empty for DELETE operations".into(),
        ));
    }
    let started = std::time::Instant::now();
    let api_version = api_version.to_owned();
    // The request is reviewed as it came: taken out of the body, not copied.
    let review_of = Review::of_request(review["request"].take());
    let set = core.policies.current();
    let ctx = Context {
        point: EnforcementPoint::Admission,
        inventory: None,
        namespace: None,
    };
    let mut evaluated = Vec::new();
    let mut findings = set.check_constraints_with(&review_of, ctx, &mut evaluated);
    findings.extend(set.check_admission_rego(&review_of));
    let now = now_unix();
    core.policies
        .log
        .count(now, evaluation_counts(&evaluated, &findings));
    let namespace = review_of.namespace.clone();
    let name = object_name(&review_of.object).to_string();
    let decided = effective(&core.policies, findings, &namespace, &name, now);
    let object = object_ref(&review_of.object);
    let mut deny = Vec::new();
    let mut warn = Vec::new();
    let mut rows = Vec::new();
    for (f, word) in &decided {
        let line = format!("[{}] {}", f.policy, f.message);
        match *word {
            // An evaluation error is a violation, as Gatekeeper answers it.
            "deny" | "error" => deny.push((word.to_string(), line)),
            "warn" => warn.push(line),
            _ => {}
        }
        core.policies.metrics.violations("admission", word, 1);
        rows.push(ViolationRow {
            at: now,
            point: "admission",
            action: word,
            policy: f.policy.clone(),
            kind: f.kind.clone(),
            object: object.clone(),
            namespace: namespace.clone(),
            message: f.message.clone(),
            source: uid.clone(),
            team: None,
        });
    }
    core.policies.log.record(rows);
    // Gatekeeper orders lines by (action, message).
    deny.sort();
    warn.sort();
    let mut response = json!({"uid": uid});
    if deny.is_empty() {
        response["allowed"] = json!(true);
        response["status"] = json!({"code": if warn.is_empty() { 200 } else { 299 }});
    } else {
        let message: Vec<String> = deny.into_iter().map(|(_, l)| l).collect();
        response["allowed"] = json!(false);
        response["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": message.join("\n"),
        });
    }
    if !warn.is_empty() {
        response["warnings"] = json!(warn);
    }
    let status = if decided.iter().any(|(_, w)| *w == "error") {
        "error"
    } else if response["allowed"] == false {
        "deny"
    } else if response.get("warnings").is_some() {
        "warn"
    } else {
        "allow"
    };
    core.policies.metrics.decision(status, started.elapsed());
    Ok(json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": response,
    }))
}

/// The AdmissionReview answering a malformed request: `allowed: false`, code 400.
pub fn admission_error(message: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "",
            "allowed": false,
            "status": {"code": 400, "message": message},
        },
    })
}

/// Per policy: evaluations and evaluation errors, for the capability SLOs.
fn evaluation_counts(evaluated: &[String], findings: &[Finding]) -> Vec<(String, u64, u64)> {
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for name in evaluated {
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error && &f.policy == name)
            .count() as u64;
        match out.iter_mut().find(|(p, _, _)| p == name) {
            Some(slot) => {
                slot.1 += 1;
                slot.2 += errors.min(1);
            }
            None => out.push((name.clone(), 1, errors.min(1))),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Checking manifests

/// Check manifest files at `point` (the scaffolder, a CI report, the
/// playground): each finding with its file, line, object and effect.
/// Findings are recorded unless `point` is the playground's audit.
pub fn check_files(
    core: &CoreState,
    point: EnforcementPoint,
    files: &[SourceFile],
    source_label: &str,
    team: Option<&str>,
) -> Result<Vec<(String, CheckReport)>, CoreError> {
    let set = core.policies.current();
    let now = now_unix();
    let namespaces = vec![
        paved_policy::set::DEFAULT_NAMESPACE.to_string(),
        paved_policy::set::ADMISSION_PACKAGE.to_string(),
    ];
    let mut out = Vec::new();
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    for file in files {
        let docs = file.documents().map_err(|e| CoreError::Invalid {
            field: "manifests",
            message: e.to_string(),
        })?;
        let checks = set.check_documents(&docs, point, &namespaces);
        let mut report = CheckReport {
            objects: 0,
            findings: Vec::new(),
            blocked: false,
        };
        for check in checks {
            if paved_policy::set::is_kubernetes_object(&check.document.value) {
                report.objects += 1;
            }
            if point != EnforcementPoint::Audit {
                counts.extend(evaluation_counts(&check.evaluated, &check.findings));
            }
            let value = &check.document.value;
            let ns = value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let object = check.document.object_ref();
            for (f, word) in effective(&core.policies, check.findings, &ns, object_name(value), now)
            {
                if matches!(word, "deny" | "error") {
                    report.blocked = true;
                }
                if point != EnforcementPoint::Audit {
                    core.policies.metrics.violations(point.label(), word, 1);
                    rows.push(ViolationRow {
                        at: now,
                        point: point.label(),
                        action: word,
                        policy: f.policy.clone(),
                        kind: f.kind.clone(),
                        object: object.clone(),
                        namespace: ns.clone(),
                        message: f.message.clone(),
                        source: format!("{source_label}{}:{}", file.name, check.document.line),
                        team: team.map(str::to_string),
                    });
                }
                report.findings.push(CheckFinding {
                    line: check.document.line,
                    document: check.document.index,
                    object: object.clone(),
                    policy: f.policy,
                    action: word.to_string(),
                    message: f.message,
                });
            }
        }
        out.push((file.name.clone(), report));
    }
    core.policies.log.record(rows);
    core.policies.log.count(now, counts);
    Ok(out)
}

/// Who may see the policies, their exceptions and the playground: anyone
/// with a team or a platform role.
pub fn authorize_view(principal: &Principal) -> Result<(), CoreError> {
    if principal.has_no_access() {
        return Err(CoreError::Forbidden(
            "Policies are visible to members of a team and the platform team.".into(),
        ));
    }
    Ok(())
}

/// The playground: check pasted YAML as an audit (nothing recorded).
pub fn playground(
    core: &CoreState,
    principal: &Principal,
    yaml: &str,
) -> Result<CheckReport, CoreError> {
    authorize_view(principal)?;
    if yaml.len() > MAX_CHECK_BYTES {
        return Err(CoreError::Invalid {
            field: "manifests",
            message: format!("at most {} MiB of YAML", MAX_CHECK_BYTES / 1024 / 1024),
        });
    }
    if yaml.trim().is_empty() {
        return Err(CoreError::Invalid {
            field: "manifests",
            message: "paste one or more Kubernetes manifests".into(),
        });
    }
    let mut reports = check_files(
        core,
        EnforcementPoint::Audit,
        &[SourceFile::new("pasted.yaml", yaml)],
        "",
        None,
    )?;
    Ok(reports.remove(0).1)
}

// ---------------------------------------------------------------------------
// What is in force

fn action_at(action: Option<EnforcementAction>) -> Option<String> {
    action.map(|a| a.as_str().to_string())
}

/// The policies in force, with their actions at each point and recent counts.
pub async fn list_policies(
    core: &CoreState,
    principal: &Principal,
) -> Result<Vec<PolicyView>, CoreError> {
    authorize_view(principal)?;
    let set = core.policies.current();
    let week_ago = now_unix() - 7 * 86_400;
    let counts = paved_store::policy::counts_since((&core.db).into(), week_ago).await?;
    let count_of = |name: &str| counts.iter().find(|c| c.0 == name).map_or(0, |c| c.1);
    let mut out = Vec::new();
    for c in &set.constraints {
        let template = set.templates.get(&c.kind);
        let owner = template.and_then(|t| {
            t.source
                .pointer("/metadata/annotations/paved.dev~1owner")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let points = [
            EnforcementPoint::Scaffolder,
            EnforcementPoint::Ci,
            EnforcementPoint::Admission,
        ];
        let matches = if c.matcher.kinds.is_empty() {
            vec!["*".to_string()]
        } else {
            c.matcher
                .kinds
                .iter()
                .flat_map(|k| {
                    let groups = if k.api_groups.is_empty() {
                        vec!["*".to_string()]
                    } else {
                        k.api_groups.clone()
                    };
                    let kinds = if k.kinds.is_empty() {
                        vec!["*".to_string()]
                    } else {
                        k.kinds.clone()
                    };
                    groups.into_iter().flat_map(move |g| {
                        kinds.clone().into_iter().map(move |kind| {
                            if g.is_empty() {
                                kind
                            } else {
                                format!("{g}/{kind}")
                            }
                        })
                    })
                })
                .collect()
        };
        out.push(PolicyView {
            name: c.name.clone(),
            kind: c.kind.clone(),
            title: template
                .and_then(|t| t.title.clone())
                .unwrap_or_else(|| c.kind.clone()),
            description: template
                .and_then(|t| t.description.clone())
                .unwrap_or_default(),
            owner,
            actions: points.iter().map(|p| action_at(c.actions.at(*p))).collect(),
            matches,
            excluded_namespaces: c
                .matcher
                .excluded_namespaces
                .iter()
                .map(|w| w.0.clone())
                .collect(),
            recent_violations: count_of(&c.name),
        });
    }
    for ns in set.namespaces() {
        out.push(PolicyView {
            name: ns.clone(),
            kind: "Rego".into(),
            title: ns.clone(),
            description: if ns == paved_policy::set::ADMISSION_PACKAGE {
                "Plain OPA admission policy: deny[msg] over an AdmissionReview's input.request."
                    .into()
            } else {
                "Rego rules deny, violation and warn over each document (conftest's form).".into()
            },
            owner: None,
            actions: POINTS.iter().map(|_| Some("deny".to_string())).collect(),
            matches: vec!["*".into()],
            excluded_namespaces: Vec::new(),
            recent_violations: 0,
        });
    }
    Ok(out)
}

/// The published bundle (`GET /api/policy/v1/bundle`): every template,
/// constraint and Rego file in force, for `paved policy test -p <url>`.
pub fn bundle(core: &CoreState) -> Value {
    let set = core.policies.current();
    let rego: Vec<Value> = match &set.rego {
        None => Vec::new(),
        Some(r) => r
            .files
            .iter()
            .filter_map(|name| {
                std::fs::read_to_string(name)
                    .ok()
                    .map(|source| json!({"name": name, "source": source}))
            })
            .collect(),
    };
    json!({
        "apiVersion": "paved.dev/v1",
        "kind": "PolicyBundle",
        "templates": set.templates.values().map(|t| t.source.clone()).collect::<Vec<_>>(),
        "constraints": set.constraints.iter().map(|c| c.source.clone()).collect::<Vec<_>>(),
        "rego": rego,
    })
}

// ---------------------------------------------------------------------------
// Violations

/// The filter of a violations page.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub point: Option<String>,
    pub policy: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Recorded violations, newest first (platform admins and PMs).
pub async fn violations(
    core: &CoreState,
    principal: &Principal,
    filter: ViolationFilter,
) -> Result<ViolationPage, CoreError> {
    authorize(principal, Action::ViewPlatformInsights).map_err(|f| CoreError::Forbidden(f.0))?;
    if let Some(point) = &filter.point {
        if !["scaffolder", "ci", "admission", "audit"].contains(&point.as_str()) {
            return Err(CoreError::Invalid {
                field: "point",
                message: "one of scaffolder, ci, admission, audit".into(),
            });
        }
    }
    core.policies.log.flush().await;
    let limit = filter.limit.clamp(1, 200);
    let before = filter.before.unwrap_or(i64::MAX);
    let point = filter.point.clone();
    let policy = filter.policy.clone();
    let db = paved_store::Db::from(&core.db);
    let rows =
        paved_store::policy::violations(db, before, point.as_deref(), policy.as_deref(), limit)
            .await?;
    let total =
        paved_store::policy::violation_total(db, point.as_deref(), policy.as_deref()).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(ViolationPage {
        items: rows
            .into_iter()
            .map(|r| ViolationView {
                id: r.id,
                at: crate::rfc3339_utc(r.at),
                point: r.point,
                action: r.action,
                policy: r.policy,
                kind: r.kind,
                object: r.object,
                namespace: r.namespace,
                message: r.message,
                source: r.source,
                team: r.team,
            })
            .collect(),
        next_before,
        total,
    })
}

// ---------------------------------------------------------------------------
// Exceptions

/// Every exception, newest first (anyone who may see policies).
pub async fn exceptions(
    core: &CoreState,
    principal: &Principal,
) -> Result<Vec<ExceptionView>, CoreError> {
    authorize_view(principal)?;
    let now = now_unix();
    let rows = paved_store::policy::exceptions((&core.db).into()).await?;
    Ok(rows
        .into_iter()
        .map(|r| ExceptionView {
            id: r.id,
            policy: r.policy,
            namespace: r.namespace,
            object_name: r.object_name,
            team: r.team,
            reason: r.reason,
            expires_at: crate::rfc3339_utc(r.expires_at),
            created_by: r.created_by,
            created_at: crate::rfc3339_utc(r.created_at),
            state: if r.revoked_at.is_some() {
                "revoked"
            } else if r.expires_at <= now {
                "expired"
            } else {
                "active"
            }
            .into(),
        })
        .collect())
}

/// Grant an exception (platform admins), audited.
pub async fn create_exception(
    core: &CoreState,
    principal: &Principal,
    input: NewException,
) -> Result<ExceptionView, CoreError> {
    authorize(principal, Action::AdministerPlatform).map_err(|f| CoreError::Forbidden(f.0))?;
    let set = core.policies.current();
    if !set.constraints.iter().any(|c| c.name == input.policy) {
        return Err(CoreError::Invalid {
            field: "policy",
            message: format!("no constraint named {:?} is in force", input.policy),
        });
    }
    if !crate::secrets::store::is_dns1123_label(&input.namespace) {
        return Err(CoreError::Invalid {
            field: "namespace",
            message: "a Kubernetes namespace name: lowercase letters, digits and -".into(),
        });
    }
    let object_name = input
        .object_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("*")
        .to_string();
    let pattern_ok = {
        let inner = object_name.trim_start_matches('*').trim_end_matches('*');
        object_name.len() <= 253
            && inner
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !pattern_ok {
        return Err(CoreError::Invalid {
            field: "object_name",
            message: "an object name, optionally with a leading or trailing *".into(),
        });
    }
    let reason = input.reason.trim().to_string();
    if reason.len() < 10 || reason.len() > 2000 {
        return Err(CoreError::Invalid {
            field: "reason",
            message: "say why, in 10 to 2000 characters".into(),
        });
    }
    if !(1..=365).contains(&input.days) {
        return Err(CoreError::Invalid {
            field: "days",
            message: "an exception lasts 1 to 365 days".into(),
        });
    }
    let db = paved_store::Db::from(&core.db);
    if paved_store::teams::find(db, &input.team).await?.is_none() {
        return Err(CoreError::Invalid {
            field: "team",
            message: format!("no team named {:?}", input.team),
        });
    }
    let now = now_unix();
    let expires_at = now + i64::from(input.days) * 86_400;
    let actor = principal.actor();
    let mut tx = db.begin().await?;
    let id = paved_store::policy::insert_exception(
        tx.conn(),
        paved_store::policy::NewException {
            policy: &input.policy,
            namespace: &input.namespace,
            object_name: &object_name,
            team: &input.team,
            reason: &reason,
            expires_at,
            created_by: &actor,
            created_at: now,
        },
    )
    .await?;
    audit::record(
        tx.conn(),
        &actor,
        "policy.exception.create",
        &format!("policy-exception:{id}"),
        None,
        Some(json!({
            "policy": input.policy, "namespace": input.namespace, "object_name": object_name,
            "team": input.team, "reason": reason, "expires_at": expires_at,
        })),
    )
    .await?;
    tx.commit().await?;
    core.policies.reload_exceptions(&core.db).await?;
    crate::changes::publish(core, crate::changes::Change::Policies).await;
    Ok(ExceptionView {
        id,
        policy: input.policy,
        namespace: input.namespace,
        object_name,
        team: input.team,
        reason,
        expires_at: crate::rfc3339_utc(expires_at),
        created_by: actor,
        created_at: crate::rfc3339_utc(now),
        state: "active".into(),
    })
}

/// Revoke an exception (platform admins), audited.
pub async fn revoke_exception(
    core: &CoreState,
    principal: &Principal,
    id: i64,
) -> Result<(), CoreError> {
    authorize(principal, Action::AdministerPlatform).map_err(|f| CoreError::Forbidden(f.0))?;
    let now = now_unix();
    let actor = principal.actor();
    let mut tx = paved_store::Db::from(&core.db).begin().await?;
    if !paved_store::policy::revoke_exception(tx.conn(), id, &actor, now).await? {
        return Err(CoreError::NotFound(format!("active exception {id}")));
    }
    audit::record(
        tx.conn(),
        &actor,
        "policy.exception.revoke",
        &format!("policy-exception:{id}"),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    core.policies.reload_exceptions(&core.db).await?;
    crate::changes::publish(core, crate::changes::Change::Policies).await;
    Ok(())
}

/// Everything the Policies page shows.
pub async fn page(core: &CoreState, principal: &Principal) -> Result<PoliciesPage, CoreError> {
    let policies = list_policies(core, principal).await?;
    let exceptions = exceptions(core, principal).await?;
    let can_view_violations = authorize(principal, Action::ViewPlatformInsights).is_ok();
    let violations = if can_view_violations {
        violations(
            core,
            principal,
            ViolationFilter {
                limit: 50,
                ..Default::default()
            },
        )
        .await?
    } else {
        ViolationPage {
            items: Vec::new(),
            next_before: None,
            total: 0,
        }
    };
    let can_administer = authorize(principal, Action::AdministerPlatform).is_ok();
    let teams = if can_administer {
        paved_store::teams::list((&core.db).into())
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect()
    } else {
        Vec::new()
    };
    Ok(PoliciesPage {
        policies,
        violations,
        exceptions,
        sources: core.policies.sources().to_vec(),
        can_administer,
        can_view_violations,
        teams,
    })
}
