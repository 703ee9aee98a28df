//! Gatekeeper ConstraintTemplates, compiled once into a prepared regorus engine.

use std::sync::Arc;

use regorus::Value as RegoValue;
use serde_json::Value;

use crate::{PolicyError, Result};

/// The only target Gatekeeper's admission templates use.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// A compiled Rego program: the engine with its modules loaded and prepared.
/// Each evaluation clones it (cheap: modules and data are shared).
#[derive(Clone)]
pub struct Program {
    engine: regorus::Engine,
    /// Prepared engines ready for another evaluation: taking one is cheaper
    /// than cloning the prepared engine.
    idle: Arc<std::sync::Mutex<Vec<regorus::Engine>>>,
    /// The rule paths this program answers (`data.<package>.violation`, …).
    pub package: String,
    /// Every package the modules define (`data.a.b`), sorted.
    pub packages: Vec<String>,
    /// Whether the Rego reads `data.inventory`.
    pub uses_inventory: bool,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("package", &self.package)
            .field("uses_inventory", &self.uses_inventory)
            .finish()
    }
}

/// Whether a plain Rego file is Rego v1 (`if`, `contains`) or v0. A file
/// that imports `rego.v1`, or uses `if`/`contains` without parsing as v0, is
/// v1; a file that parses as v0 and uses neither keyword is v0 (regorus reads
/// some v0 rules in v1 mode too, with other meanings). The error reported is
/// the one of the form the file looks written in.
pub fn detect_v1(path: &str, source: &str) -> Result<bool> {
    let attempt = |v1: bool| {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(!v1);
        engine.add_policy(path.to_string(), source.to_string())
    };
    // Keywords in code, not in comments.
    let code: String = source
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let looks_v1 = code.contains("import rego.v1")
        || code.contains(" if ")
        || code.contains(" if{")
        || code.contains(" contains ");
    let first = attempt(looks_v1);
    match first {
        Ok(_) => Ok(looks_v1),
        Err(error) => match attempt(!looks_v1) {
            Ok(_) => Ok(!looks_v1),
            Err(_) => Err(PolicyError::Invalid {
                policy: path.to_string(),
                message: first_lines(&error.to_string()),
            }),
        },
    }
}

/// One Rego module's source and which Rego it is written in.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: String,
    pub source: String,
    /// Rego v1 (`if`/`contains` required) rather than v0.
    pub v1: bool,
}

impl Program {
    /// Compile modules; the first is the main one, whose package is returned.
    pub fn compile(policy: &str, modules: &[Module]) -> Result<Program> {
        let invalid = |message: String| PolicyError::Invalid {
            policy: policy.to_string(),
            message,
        };
        let mut engine = regorus::Engine::new();
        // As OPA: a builtin's error makes the expression undefined.
        engine.set_strict_builtin_errors(false);
        let mut package = None;
        for module in modules {
            engine.set_rego_v0(!module.v1);
            let source = if module.v1 {
                module.source.clone()
            } else {
                crate::normalize::normalize_v0(&module.source)
            };
            let pkg = engine
                .add_policy(module.path.clone(), source)
                .map_err(|e| invalid(first_lines(&e.to_string())))?;
            package.get_or_insert(pkg);
        }
        let package = package.ok_or_else(|| invalid("no Rego".into()))?;
        let uses_inventory = modules.iter().any(|m| m.source.contains("data.inventory"));
        // Prepare now (and surface compile errors now) rather than on first use.
        engine.set_input(RegoValue::new_object());
        engine
            .eval_query("data.__paved_prepare".to_string(), false)
            .map_err(|e| invalid(first_lines(&e.to_string())))?;
        let mut packages = engine.get_packages().unwrap_or_default();
        packages.sort();
        packages.dedup();
        Ok(Program {
            engine,
            idle: Arc::default(),
            package,
            packages,
            uses_inventory,
        })
    }

    /// Evaluate the rule at a full path (`data.<package>.<rule>`) with `input`
    /// (converted once by the caller, for every constraint of a review) and,
    /// for Rego that reads it, `data.inventory`. Undefined is `None`.
    pub fn eval_rego(
        &self,
        policy: &str,
        path: &str,
        input: RegoValue,
        inventory: Option<&Value>,
    ) -> Result<Option<Value>> {
        let eval_err = |message: String| PolicyError::Eval {
            policy: policy.to_string(),
            message,
        };
        let inventory = inventory.filter(|_| self.uses_inventory);
        // Adding data makes regorus prepare the program again: only for Rego
        // that reads the inventory, on a fresh clone that is not kept.
        let pooled = if inventory.is_none() {
            self.idle.lock().ok().and_then(|mut idle| idle.pop())
        } else {
            None
        };
        let mut engine = pooled.unwrap_or_else(|| self.engine.clone());
        if let Some(inventory) = inventory {
            let data = serde_json::json!({ "inventory": inventory });
            engine
                .add_data(to_rego(&data).map_err(eval_err)?)
                .map_err(|e| eval_err(first_lines(&e.to_string())))?;
        }
        engine.set_input(input);
        let value = engine.eval_rule(path.to_string());
        if inventory.is_none() {
            engine.set_input(RegoValue::Undefined);
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < 64 {
                    idle.push(engine);
                }
            }
        }
        let value = value.map_err(|e| eval_err(first_lines(&e.to_string())))?;
        finish(value, policy)
    }

    /// Evaluate the whole main package (every rule's value, by name), for
    /// conftest policies whose rules are found by name (`deny_*`, `warn_*`).
    pub fn eval_package(&self, policy: &str, package: &str, input: &Value) -> Result<Value> {
        let eval_err = |message: String| PolicyError::Eval {
            policy: policy.to_string(),
            message,
        };
        let mut engine = self.engine.clone();
        engine.set_input(to_rego(input).map_err(eval_err)?);
        let results = engine
            .eval_query(package.to_string(), false)
            .map_err(|e| eval_err(first_lines(&e.to_string())))?;
        let value = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| e.value.clone())
            .unwrap_or(RegoValue::Undefined);
        if value == RegoValue::Undefined {
            return Ok(Value::Object(Default::default()));
        }
        let json = value.to_json_str().map_err(|e| eval_err(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| eval_err(e.to_string()))
    }
}

/// A rule's value as JSON; undefined (or an empty set) is `None`.
fn finish(value: RegoValue, policy: &str) -> Result<Option<Value>> {
    let eval_err = |message: String| PolicyError::Eval {
        policy: policy.to_string(),
        message,
    };
    if value == RegoValue::Undefined {
        return Ok(None);
    }
    let json = value.to_json_str().map_err(|e| eval_err(e.to_string()))?;
    let json: Value = serde_json::from_str(&json).map_err(|e| eval_err(e.to_string()))?;
    if json.as_array().is_some_and(|a| a.is_empty()) {
        return Ok(None);
    }
    Ok(Some(json))
}

pub fn to_rego(value: &Value) -> std::result::Result<RegoValue, String> {
    RegoValue::from_json_str(&value.to_string()).map_err(|e| e.to_string())
}

/// The first lines of a compiler message (regorus quotes the source line and a caret).
fn first_lines(message: &str) -> String {
    message.lines().take(4).collect::<Vec<_>>().join("\n")
}

/// A ConstraintTemplate: the constraint kind it defines and its compiled Rego.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The kind of the constraints that instantiate it (`spec.crd.spec.names.kind`).
    pub kind: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub program: Arc<Program>,
    /// `targets[].operations`: the admission operations the template reviews
    /// at the webhook (empty or `*`: all), as Gatekeeper filters them.
    pub operations: Vec<String>,
    /// The template as written, for the policy bundle and the admin page.
    pub source: Value,
}

impl Template {
    /// Whether the webhook reviews `operation` with this template.
    pub fn reviews_operation(&self, operation: &str) -> bool {
        self.operations.is_empty()
            || self
                .operations
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(operation))
    }
}

impl Template {
    /// Read a ConstraintTemplate (`templates.gatekeeper.sh/v1` or `v1beta1`)
    /// and compile its Rego for the admission target.
    pub fn from_value(value: &Value) -> Result<Template> {
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let invalid = |message: &str| PolicyError::Invalid {
            policy: if name.is_empty() {
                "ConstraintTemplate".to_string()
            } else {
                name.clone()
            },
            message: message.to_string(),
        };
        if value.get("kind").and_then(Value::as_str) != Some("ConstraintTemplate") {
            return Err(invalid("not a ConstraintTemplate"));
        }
        if name.is_empty() {
            return Err(invalid("metadata.name is required"));
        }
        let kind = value
            .pointer("/spec/crd/spec/names/kind")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid("spec.crd.spec.names.kind is required"))?
            .to_string();
        if kind.to_lowercase() != name {
            return Err(invalid(
                "metadata.name must be the lowercase of spec.crd.spec.names.kind",
            ));
        }
        let targets = value
            .pointer("/spec/targets")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("spec.targets is required"))?;
        let target = targets
            .iter()
            .find(|t| t.get("target").and_then(Value::as_str) == Some(ADMISSION_TARGET))
            .ok_or_else(|| invalid("no target admission.k8s.gatekeeper.sh"))?;
        let modules = rego_modules(&name, target).map_err(|m| invalid(&m))?;
        let program = Program::compile(&name, &modules)?;
        if !program.package.starts_with("data.") {
            return Err(invalid("unexpected package"));
        }
        let annotation = |key: &str| {
            value
                .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
        };
        let operations = target
            .get("operations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        Ok(Template {
            operations,
            title: annotation("metadata.gatekeeper.sh/title"),
            description: annotation("description"),
            name,
            kind,
            program: Arc::new(program),
            source: value.clone(),
        })
    }
}

/// The Rego of a target: `rego` + `libs` (v0), or a `code` entry with
/// `engine: Rego` whose `source` has `rego`, `libs` and an optional `version`.
fn rego_modules(name: &str, target: &Value) -> std::result::Result<Vec<Module>, String> {
    let code = target
        .get("code")
        .and_then(Value::as_array)
        .and_then(|code| {
            code.iter()
                .find(|c| c.get("engine").and_then(Value::as_str) == Some("Rego"))
        });
    let (rego, libs, v1) = match code {
        Some(code) => {
            let source = code.get("source").ok_or("code[].source is required")?;
            let v1 = match source.get("version").and_then(Value::as_str) {
                None | Some("v0") => false,
                Some("v1") => true,
                Some(other) => return Err(format!("unknown Rego version {other:?}")),
            };
            (source.get("rego"), source.get("libs"), v1)
        }
        None => (target.get("rego"), target.get("libs"), false),
    };
    let rego = rego
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .ok_or("the admission target has no Rego")?;
    let mut modules = vec![Module {
        path: format!("{name}/template.rego"),
        source: rego.to_string(),
        v1,
    }];
    for (i, lib) in libs
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let source = lib.as_str().ok_or("libs must be strings of Rego")?;
        modules.push(Module {
            path: format!("{name}/lib{i}.rego"),
            source: source.to_string(),
            v1,
        });
    }
    // Gatekeeper's rule: libraries live under data.lib.
    for lib in &modules[1..] {
        let package = lib
            .source
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("package "))
            .map(|l| l["package ".len()..].trim())
            .unwrap_or("");
        if !package.starts_with("lib.") && package != "lib" {
            return Err(format!(
                "library package {package:?} must be under lib (package lib.<name>)"
            ));
        }
    }
    Ok(modules)
}
