//! `gator verify`-compatible suites: `kind: Suite` files naming a template,
//! a constraint and cases (an object, optional inventory, assertions).

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use crate::constraint::EnforcementPoint;
use crate::docs::SourceFile;
use crate::review::Review;
use crate::set::{Context, Inventory, PolicySet};
use crate::{PolicyError, Result};

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Skip,
    Fail(String),
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub test: String,
    pub case: String,
    pub outcome: Outcome,
}

/// One suite file's results.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub path: String,
    pub name: String,
    /// A problem with the suite or a test as a whole (missing file, bad template).
    pub errors: Vec<String>,
    pub cases: Vec<CaseResult>,
}

impl SuiteResult {
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
            && self
                .cases
                .iter()
                .all(|c| !matches!(c.outcome, Outcome::Fail(_)))
    }
}

/// Every suite file under `path` (a file or a folder, recursively), sorted.
pub fn find_suites(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(path, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)?.flatten() {
            walk(&entry.path(), out)?;
        }
    } else if matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) {
        let text = std::fs::read_to_string(path).map_err(io)?;
        // A suite's first document is `kind: Suite` of test.gatekeeper.sh.
        let first = SourceFile::new(path.display().to_string(), text)
            .documents()
            .ok()
            .and_then(|d| d.into_iter().next());
        if let Some(doc) = first {
            let is_suite = doc.value.get("kind").and_then(Value::as_str) == Some("Suite")
                && doc
                    .value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.starts_with("test.gatekeeper.sh/"));
            if is_suite {
                out.push(path.to_path_buf());
            }
        }
    } else if !path.exists() {
        return Err(PolicyError::Io {
            path: path.display().to_string(),
            message: "no such file or directory".into(),
        });
    }
    Ok(())
}

fn read_docs(path: &Path) -> std::result::Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    SourceFile::new(path.display().to_string(), text)
        .documents()
        .map(|d| d.into_iter().map(|d| d.value).collect())
        .map_err(|e| e.to_string())
}

/// Run one suite file.
pub fn run_suite(path: &Path) -> SuiteResult {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut result = SuiteResult {
        path: path.display().to_string(),
        name: String::new(),
        errors: Vec::new(),
        cases: Vec::new(),
    };
    let suite = match read_docs(path) {
        Ok(docs) => docs.into_iter().next().unwrap_or(Value::Null),
        Err(e) => {
            result.errors.push(e);
            return result;
        }
    };
    result.name = suite
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if suite.get("skip").and_then(Value::as_bool) == Some(true) {
        return result;
    }
    for test in suite
        .get("tests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let test_name = test
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let skip_test = test.get("skip").and_then(Value::as_bool) == Some(true);
        let cases = test
            .get("cases")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if skip_test {
            for case in &cases {
                result.cases.push(CaseResult {
                    test: test_name.clone(),
                    case: case_name(case),
                    outcome: Outcome::Skip,
                });
            }
            continue;
        }
        let set = match load_test(dir, test) {
            Ok(set) => set,
            Err(e) => {
                result.errors.push(format!("{test_name}: {e}"));
                continue;
            }
        };
        for case in &cases {
            let outcome = if case.get("skip").and_then(Value::as_bool) == Some(true) {
                Outcome::Skip
            } else {
                match run_case(dir, &set, case) {
                    Ok(()) => Outcome::Pass,
                    Err(e) => Outcome::Fail(e),
                }
            };
            result.cases.push(CaseResult {
                test: test_name.clone(),
                case: case_name(case),
                outcome,
            });
        }
    }
    result
}

fn case_name(case: &Value) -> String {
    case.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn load_test(dir: &Path, test: &Value) -> std::result::Result<PolicySet, String> {
    let file = |field: &str| {
        test.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|p| dir.join(p))
            .ok_or_else(|| format!("invalid Suite: missing {field}"))
    };
    let template = read_docs(&file("template")?)?;
    let constraint = read_docs(&file("constraint")?)?;
    let docs: Vec<_> = template
        .into_iter()
        .take(1)
        .chain(constraint.into_iter().take(1))
        .enumerate()
        .map(|(index, value)| crate::docs::Document {
            file: String::new(),
            index,
            line: 1,
            value,
        })
        .collect();
    let set = PolicySet::build(&docs, &[]).map_err(|e| e.to_string())?;
    if set.templates.is_empty() {
        return Err("template: not a ConstraintTemplate".into());
    }
    if set.constraints.is_empty() {
        return Err("constraint: not a Constraint".into());
    }
    Ok(set)
}

fn run_case(dir: &Path, set: &PolicySet, case: &Value) -> std::result::Result<(), String> {
    let object = case
        .get("object")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("invalid Case: must define object")?;
    let assertions = case
        .get("assertions")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or("invalid Case: assertions must be non-empty")?;
    let docs = read_docs(&dir.join(object))?;
    if docs.len() != 1 {
        return Err(format!(
            "object file must contain exactly one object: {object:?} defines {} objects",
            docs.len()
        ));
    }
    let mut inventory_objects = Vec::new();
    for file in case
        .get("inventory")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        inventory_objects.extend(read_docs(&dir.join(file))?);
    }
    let inventory = Inventory::from_objects(&inventory_objects).map_err(|e| e.to_string())?;
    let object = docs.into_iter().next().unwrap_or(Value::Null);
    if object.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        let request = object
            .get("request")
            .ok_or("missing an AdmissionRequest object")?;
        let has = |k: &str| request.get(k).is_some_and(|o| !o.is_null());
        if !has("object") && !has("oldObject") {
            return Err("no object or oldObject found to review".into());
        }
        if request.get("operation").and_then(Value::as_str) == Some("DELETE") && !has("oldObject") {
            return Err("oldObject cannot be nil for DELETE operations".into());
        }
    }
    let review = Review::of_document(object);
    let findings = set.check_constraints(
        &review,
        Context {
            point: EnforcementPoint::Ci,
            inventory: Some(&inventory),
            namespace: None,
        },
    );
    for assertion in assertions {
        let message = assertion.get("message").and_then(Value::as_str);
        let regex = match message {
            Some(m) => Some(Regex::new(m).map_err(|e| format!("invalid message regex: {e}"))?),
            None => None,
        };
        let matching: Vec<&str> = findings
            .iter()
            .filter(|f| regex.as_ref().is_none_or(|r| r.is_match(&f.message)))
            .map(|f| f.message.as_str())
            .collect();
        let want = assertion
            .get("violations")
            .cloned()
            .unwrap_or(Value::String("yes".into()));
        let (ok, expected) = match &want {
            Value::String(s) if s == "yes" => (!matching.is_empty(), "at least 1".to_string()),
            Value::String(s) if s == "no" => (matching.is_empty(), "none".to_string()),
            Value::Bool(true) => (!matching.is_empty(), "at least 1".to_string()),
            Value::Bool(false) => (matching.is_empty(), "none".to_string()),
            Value::Number(n) if n.as_u64().is_some() => {
                let n = n.as_u64().unwrap_or(0) as usize;
                (matching.len() == n, format!("exactly {n}"))
            }
            other => {
                return Err(format!(
                    "invalid assertion: violations must be yes, no or a count, got {other}"
                ))
            }
        };
        if !ok {
            let containing = message
                .map(|m| format!(" containing {m:?}"))
                .unwrap_or_default();
            let all: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
            return Err(format!(
                "unexpected number of violations: got {} violations{containing} but want {expected}: got messages {all:?}",
                matching.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdemo
spec:
  crd:
    spec:
      names:
        kind: K8sDemo
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdemo
        violation[{"msg": msg}] {
          input.review.object.metadata.name == input.parameters.forbidden
          msg := sprintf("name %v is forbidden", [input.review.object.metadata.name])
        }
"#;

    #[test]
    fn a_suite_passes_and_a_wrong_assertion_fails() {
        let dir = std::env::temp_dir().join(format!("paved-suite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write(&dir, "template.yaml", TEMPLATE);
        write(&dir, "constraint.yaml", "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata:\n  name: no-bad\nspec:\n  parameters:\n    forbidden: bad\n");
        write(
            &dir,
            "bad.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n",
        );
        write(
            &dir,
            "good.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\n",
        );
        write(&dir, "suite.yaml", "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\nmetadata:\n  name: demo\ntests:\n- name: t\n  template: template.yaml\n  constraint: constraint.yaml\n  cases:\n  - name: bad\n    object: bad.yaml\n    assertions:\n    - violations: 1\n      message: forbidden\n  - name: good\n    object: good.yaml\n    assertions:\n    - violations: no\n  - name: wrong\n    object: good.yaml\n    assertions:\n    - violations: yes\n  - name: no-assertions\n    object: good.yaml\n");
        let suites = find_suites(&dir).unwrap();
        assert_eq!(suites.len(), 1);
        let r = run_suite(&suites[0]);
        let outcomes: Vec<_> = r
            .cases
            .iter()
            .map(|c| (c.case.as_str(), &c.outcome))
            .collect();
        assert_eq!(outcomes[0], ("bad", &Outcome::Pass));
        assert_eq!(outcomes[1], ("good", &Outcome::Pass));
        assert!(matches!(outcomes[2].1, Outcome::Fail(m) if m.contains("want at least 1")));
        assert!(
            matches!(outcomes[3].1, Outcome::Fail(m) if m.contains("assertions must be non-empty"))
        );
        assert!(!r.passed());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
