//! A set of policies, compiled once, and checking objects against it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::constraint::{Constraint, EnforcementAction, EnforcementPoint};
use crate::docs::{kubernetes_objects, Document, SourceFile};
use crate::review::{Gvk, Review};
use crate::template::{detect_v1, Module, Program, Template};
use crate::{PolicyError, Result};

/// The package of the plain OPA admission form (`deny[msg]` over an
/// AdmissionReview's `input.request`).
pub const ADMISSION_PACKAGE: &str = "kubernetes.admission";
/// conftest's default namespace.
pub const DEFAULT_NAMESPACE: &str = "main";

/// How serious a finding is where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Recorded only (`dryrun`).
    Dryrun,
    /// Reported, not blocking (`warn`).
    Warning,
    /// Blocks (`deny`).
    Failure,
    /// The policy could not be evaluated: never a silent pass.
    Error,
}

impl From<EnforcementAction> for Severity {
    fn from(a: EnforcementAction) -> Severity {
        match a {
            EnforcementAction::Deny => Severity::Failure,
            EnforcementAction::Warn => Severity::Warning,
            EnforcementAction::Dryrun => Severity::Dryrun,
        }
    }
}

/// One violation (or evaluation error) of one policy by one object.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The constraint's name, or `package.rule` for plain Rego.
    pub policy: String,
    /// The constraint's kind (its template), or `Rego`.
    pub kind: String,
    pub message: String,
    /// Gatekeeper's `details`, or conftest's metadata.
    pub details: Value,
    pub severity: Severity,
    /// The plain Rego namespace (package) it came from, for conftest's reports.
    pub namespace: String,
}

/// What a check knows of the cluster: `data.inventory` (Gatekeeper's layout)
/// and the Namespace objects behind `namespaceSelector`.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    data: Value,
}

impl Inventory {
    /// Gatekeeper's `data.inventory` from objects: `cluster[gv][kind][name]`
    /// and `namespace[ns][gv][kind][name]`.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Result<Inventory> {
        let mut data = json!({"cluster": {}, "namespace": {}});
        for object in objects {
            let gvk = Gvk::of(object);
            let name = crate::review::str_at(object, &["metadata", "name"]);
            if gvk.version.is_empty() || gvk.kind.is_empty() || name.is_empty() {
                return Err(PolicyError::Invalid {
                    policy: "inventory".into(),
                    message: format!(
                        "an inventory object needs apiVersion, kind and metadata.name (got {:?})",
                        crate::docs::object_ref(object)
                    ),
                });
            }
            let ns = crate::review::str_at(object, &["metadata", "namespace"]);
            let slot = if ns.is_empty() {
                &mut data["cluster"]
            } else {
                let namespaces = data["namespace"].as_object_mut().expect("object");
                namespaces
                    .entry(ns.to_string())
                    .or_insert_with(|| json!({}))
            };
            let gv = slot
                .as_object_mut()
                .expect("object")
                .entry(gvk.group_version())
                .or_insert_with(|| json!({}));
            let kind = gv
                .as_object_mut()
                .expect("object")
                .entry(gvk.kind.clone())
                .or_insert_with(|| json!({}));
            kind[name] = object.clone();
        }
        Ok(Inventory { data })
    }

    /// The `data.inventory` document.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The Namespace object called `name`, if the inventory has it.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.data
            .get("cluster")
            .and_then(|c| c.get("v1"))
            .and_then(|v| v.get("Namespace"))
            .and_then(|n| n.get(name))
    }
}

/// Where and how a check runs.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub point: EnforcementPoint,
    /// `None` where no inventory exists (then a template reading
    /// `data.inventory` is an error, not a pass).
    pub inventory: Option<&'a Inventory>,
    /// The Namespace of the request, when the caller knows it (admission).
    pub namespace: Option<&'a Value>,
}

/// Plain Rego files (conftest's and the plain OPA admission form), all in one
/// engine as conftest loads them, so files may share helpers.
#[derive(Debug, Clone)]
pub struct RegoFiles {
    pub program: Arc<Program>,
    pub files: Vec<String>,
}

/// Templates, constraints and plain Rego policies, compiled.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Templates by constraint kind.
    pub templates: BTreeMap<String, Template>,
    pub constraints: Vec<Constraint>,
    pub rego: Option<RegoFiles>,
}

impl PolicySet {
    /// Number of policies: constraints plus plain Rego packages.
    pub fn len(&self) -> usize {
        self.constraints.len() + self.rego.as_ref().map_or(0, |r| r.program.packages.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Load every policy under the paths (files or folders, recursively):
    /// ConstraintTemplates and Constraints from YAML/JSON, Rego from `.rego`
    /// files (except `_test.rego`). Other documents (suites) and `samples/`
    /// folders (the examples suites check) are skipped.
    pub fn load_paths(paths: &[PathBuf]) -> Result<PolicySet> {
        let mut files = Vec::new();
        for path in paths {
            collect_files(path, &mut files)?;
        }
        files.sort();
        let mut yaml = Vec::new();
        let mut rego = Vec::new();
        for file in files {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| PolicyError::Io {
                path: name.clone(),
                message: e.to_string(),
            })?;
            if name.ends_with(".rego") {
                if !name.ends_with("_test.rego") {
                    rego.push(SourceFile::new(name, text));
                }
            } else {
                yaml.push(SourceFile::new(name, text));
            }
        }
        let mut docs = Vec::new();
        for file in &yaml {
            docs.extend(file.documents()?);
        }
        PolicySet::build(&docs, &rego)
    }

    /// Build from documents (templates and constraints; others are skipped)
    /// and Rego files.
    pub fn build(docs: &[Document], rego: &[SourceFile]) -> Result<PolicySet> {
        let mut set = PolicySet::default();
        let mut constraint_docs = Vec::new();
        for doc in docs {
            let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
            let api = doc
                .value
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if kind == "ConstraintTemplate" && api.starts_with("templates.gatekeeper.sh/") {
                let template = Template::from_value(&doc.value).map_err(|e| at(doc, e))?;
                if set.templates.contains_key(&template.kind) {
                    return Err(at(
                        doc,
                        PolicyError::Invalid {
                            policy: template.name,
                            message: "defined twice".into(),
                        },
                    ));
                }
                set.templates.insert(template.kind.clone(), template);
            } else if api.starts_with("constraints.gatekeeper.sh/") {
                constraint_docs.push(doc);
            }
        }
        for doc in constraint_docs {
            let constraint = Constraint::from_value(&doc.value).map_err(|e| at(doc, e))?;
            if !set.templates.contains_key(&constraint.kind) {
                return Err(at(
                    doc,
                    PolicyError::UnknownKind {
                        constraint: constraint.name.clone(),
                        kind: constraint.kind.clone(),
                    },
                ));
            }
            if set
                .constraints
                .iter()
                .any(|c| c.kind == constraint.kind && c.name == constraint.name)
            {
                return Err(at(
                    doc,
                    PolicyError::Invalid {
                        policy: format!("{}/{}", constraint.kind, constraint.name),
                        message: "defined twice".into(),
                    },
                ));
            }
            set.constraints.push(constraint);
        }
        if !rego.is_empty() {
            let mut modules = Vec::new();
            for file in rego {
                modules.push(Module {
                    path: file.name.clone(),
                    source: file.text.clone(),
                    v1: detect_v1(&file.name, &file.text)?,
                });
            }
            let program = Program::compile("rego", &modules)?;
            set.rego = Some(RegoFiles {
                program: Arc::new(program),
                files: rego.iter().map(|f| f.name.clone()).collect(),
            });
        }
        Ok(set)
    }

    /// The plain Rego namespaces loaded (packages without `data.`).
    pub fn namespaces(&self) -> Vec<String> {
        self.rego
            .as_ref()
            .map(|r| {
                r.program
                    .packages
                    .iter()
                    .map(|p| p.trim_start_matches("data.").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Check one review against every constraint that applies at this point.
    pub fn check_constraints(&self, review: &Review, ctx: Context<'_>) -> Vec<Finding> {
        self.check_constraints_with(review, ctx, &mut Vec::new())
    }

    /// As [`PolicySet::check_constraints`], also naming each constraint
    /// that applied (matched and was evaluated) in `evaluated`.
    pub fn check_constraints_with(
        &self,
        review: &Review,
        ctx: Context<'_>,
        evaluated: &mut Vec<String>,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        let namespace = ctx.namespace.or_else(|| {
            ctx.inventory
                .and_then(|inv| inv.namespace(&review.namespace))
        });
        let mut request = review.request.clone();
        if let Some(map) = request.as_object_mut() {
            map.insert(
                "namespaceObject".into(),
                namespace.cloned().unwrap_or_else(|| json!({})),
            );
        }
        // The review as regorus reads it, converted once for every constraint;
        // an empty inventory where the caller has one but it holds nothing.
        let mut review_rego = None;
        let empty = json!({});
        let inventory = Some(ctx.inventory.map_or(&empty, Inventory::data));
        for constraint in &self.constraints {
            let Some(action) = constraint.actions.at(ctx.point) else {
                continue;
            };
            let finding = |message: String, details: Value, severity: Severity| Finding {
                policy: constraint.name.clone(),
                kind: constraint.kind.clone(),
                message,
                details,
                severity,
                namespace: String::new(),
            };
            match constraint.matcher.matches(review, namespace) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    findings.push(finding(
                        format!(
                            "unable to match constraints: error matching the requested object: {} :failed to run Match criteria: {}",
                            review.name, e.0
                        ),
                        json!({}),
                        Severity::from(action),
                    ));
                    continue;
                }
            }
            let Some(template) = self.templates.get(&constraint.kind) else {
                continue;
            };
            // At the webhook, Gatekeeper skips templates whose `operations`
            // leave the request's operation out.
            if ctx.point == EnforcementPoint::Admission {
                let operation = crate::review::str_at(&review.request, &["operation"]);
                if !template.reviews_operation(operation) {
                    continue;
                }
            }
            evaluated.push(constraint.name.clone());
            let program = &template.program;
            if program.uses_inventory && ctx.inventory.is_none() {
                findings.push(finding(
                    format!(
                        "template {} reads data.inventory, and no inventory is available here",
                        template.name
                    ),
                    json!({}),
                    Severity::Error,
                ));
                continue;
            }
            let review_value = match &review_rego {
                Some(v) => v,
                None => review_rego.insert(regorus::Value::from(request.clone())),
            };
            let mut input = regorus::Value::new_object();
            if let Ok(map) = input.as_object_mut() {
                map.insert(regorus::Value::from("review"), review_value.clone());
                map.insert(
                    regorus::Value::from("parameters"),
                    constraint.parameters_rego.clone(),
                );
            }
            let path = format!("{}.violation", program.package);
            match program.eval_rego(&template.name, &path, input, inventory) {
                Ok(None) => {}
                Ok(Some(results)) => {
                    for result in results.as_array().into_iter().flatten() {
                        // As Gatekeeper's hook: results without a msg are dropped;
                        // a msg that is not a string is an error.
                        match result.get("msg") {
                            None | Some(Value::Null) => {}
                            Some(Value::String(msg)) => findings.push(finding(
                                msg.clone(),
                                result.get("details").cloned().unwrap_or_else(|| json!({})),
                                Severity::from(action),
                            )),
                            Some(_) => findings.push(finding(
                                "violation msg is not a string".into(),
                                json!({}),
                                Severity::Error,
                            )),
                        }
                    }
                }
                // As Gatekeeper: an evaluation error is a violation of every
                // constraint of the kind, carrying the error.
                Err(e) => findings.push(finding(e.to_string(), json!({}), Severity::Error)),
            }
        }
        findings
    }

    /// Check one review against the plain OPA admission policies
    /// (`package kubernetes.admission`: `deny[msg]`, `warn[msg]`).
    pub fn check_admission_rego(&self, review: &Review) -> Vec<Finding> {
        let Some(rego) = &self.rego else {
            return Vec::new();
        };
        let package = format!("data.{ADMISSION_PACKAGE}");
        if !rego.program.packages.contains(&package) {
            return Vec::new();
        }
        let input = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": review.request,
        });
        rules_findings(&rego.program, ADMISSION_PACKAGE, &input)
    }

    /// Check one document against conftest policies in the given namespaces.
    pub fn check_conftest(&self, doc: &Value, namespaces: &[String]) -> Vec<Finding> {
        let Some(rego) = &self.rego else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for ns in namespaces {
            if ns == ADMISSION_PACKAGE {
                continue;
            }
            if !rego.program.packages.contains(&format!("data.{ns}")) {
                continue;
            }
            findings.extend(rules_findings(&rego.program, ns, doc));
        }
        findings
    }

    /// Everything a manifest file's documents break, as the scaffolder and
    /// `paved policy test` check them: each Kubernetes object as if applied
    /// (constraints and the admission form), and each document against the
    /// conftest namespaces. Objects of the same files form the inventory.
    pub fn check_documents(
        &self,
        docs: &[Document],
        point: EnforcementPoint,
        namespaces: &[String],
    ) -> Vec<DocumentCheck> {
        let objects = kubernetes_objects(docs.to_vec());
        let inventory = Inventory::from_objects(objects.iter().map(|d| &d.value).filter(|v| {
            is_kubernetes_object(v) && !crate::review::str_at(v, &["metadata", "name"]).is_empty()
        }))
        .unwrap_or_default();
        let ctx = Context {
            point,
            inventory: Some(&inventory),
            namespace: None,
        };
        let rego_namespaces = self.namespaces();
        let mut out = Vec::new();
        for doc in objects {
            let mut findings = Vec::new();
            let mut evaluated = Vec::new();
            if is_kubernetes_object(&doc.value) {
                let review = Review::of_manifest(doc.value.clone());
                findings.extend(self.check_constraints_with(&review, ctx, &mut evaluated));
                if namespaces.iter().any(|n| n == ADMISSION_PACKAGE)
                    && rego_namespaces.iter().any(|n| n == ADMISSION_PACKAGE)
                {
                    evaluated.push(ADMISSION_PACKAGE.to_string());
                    findings.extend(self.check_admission_rego(&review));
                }
            }
            for ns in namespaces {
                if ns != ADMISSION_PACKAGE && rego_namespaces.contains(ns) {
                    evaluated.push(ns.clone());
                }
            }
            findings.extend(self.check_conftest(&doc.value, namespaces));
            out.push(DocumentCheck {
                document: doc,
                findings,
                evaluated,
            });
        }
        out
    }
}

/// One document's check: what it broke and which policies looked at it.
#[derive(Debug, Clone)]
pub struct DocumentCheck {
    pub document: Document,
    pub findings: Vec<Finding>,
    /// Constraint names and Rego namespaces that were evaluated.
    pub evaluated: Vec<String>,
}

/// Whether a document is a Kubernetes object (apiVersion and kind).
pub fn is_kubernetes_object(value: &Value) -> bool {
    value.get("apiVersion").is_some_and(Value::is_string)
        && value.get("kind").is_some_and(Value::is_string)
}

/// Findings of the `deny`, `violation` and `warn` rules (and their
/// `_suffix`ed variants) of a package, as conftest reads them: a string is
/// the message; an object carries `msg` and metadata.
fn rules_findings(program: &Program, namespace: &str, input: &Value) -> Vec<Finding> {
    let package = format!("data.{namespace}");
    let value = match program.eval_package(namespace, &package, input) {
        Ok(v) => v,
        Err(e) => {
            return vec![Finding {
                policy: namespace.to_string(),
                kind: "Rego".into(),
                message: e.to_string(),
                details: json!({}),
                severity: Severity::Error,
                namespace: namespace.to_string(),
            }]
        }
    };
    let mut findings = Vec::new();
    let Some(rules) = value.as_object() else {
        return findings;
    };
    for (rule, result) in rules {
        let severity = if rule_is(rule, "deny") || rule_is(rule, "violation") {
            Severity::Failure
        } else if rule_is(rule, "warn") {
            Severity::Warning
        } else {
            continue;
        };
        let items: Vec<&Value> = match result {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) | Value::Object(_) => vec![result],
            // A boolean deny rule (`deny if …`) that holds.
            Value::Bool(true) => vec![result],
            _ => Vec::new(),
        };
        for item in items {
            let (message, details) = match item {
                Value::String(s) => (s.clone(), json!({})),
                Value::Object(o) => match o.get("msg") {
                    Some(Value::String(m)) => {
                        let mut meta = o.clone();
                        meta.remove("msg");
                        (m.clone(), Value::Object(meta))
                    }
                    _ => {
                        findings.push(Finding {
                            policy: format!("{namespace}.{rule}"),
                            kind: "Rego".into(),
                            message: format!("rule {rule} returned an object without a string msg"),
                            details: json!({}),
                            severity: Severity::Error,
                            namespace: namespace.to_string(),
                        });
                        continue;
                    }
                },
                Value::Bool(true) => (format!("{namespace}.{rule}"), json!({})),
                _ => continue,
            };
            findings.push(Finding {
                policy: format!("{namespace}.{rule}"),
                kind: "Rego".into(),
                message,
                details,
                severity,
                namespace: namespace.to_string(),
            });
        }
    }
    findings
}

fn rule_is(rule: &str, base: &str) -> bool {
    rule == base
        || rule
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('_'))
}

fn at(doc: &Document, error: PolicyError) -> PolicyError {
    let where_ = format!("{}:{}", doc.file, doc.line);
    match error {
        PolicyError::Invalid { policy, message } => PolicyError::Invalid {
            policy: format!("{policy} ({where_})"),
            message,
        },
        PolicyError::UnknownKind { constraint, kind } => PolicyError::UnknownKind {
            constraint: format!("{constraint} ({where_})"),
            kind,
        },
        other => other,
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Hidden entries, and `samples/` folders: the examples a suite
            // checks (Gatekeeper's library layout), not policies in force.
            if name.starts_with('.') || (name == "samples" && p.is_dir()) {
                continue;
            }
            if p.is_dir() {
                collect_files(&p, out)?;
            } else if is_policy_file(&p) {
                out.push(p);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn is_policy_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("rego" | "yaml" | "yml" | "json")
    )
}
