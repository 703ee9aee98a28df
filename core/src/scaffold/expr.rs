//! Template expressions: Nunjucks-compatible `${{ … }}` through MiniJinja,
//! with the filters Backstage templates use. Step inputs are evaluated
//! recursively; a string that is exactly one expression keeps the value's
//! type (a list stays a list), like Backstage. Answers are data: rendering
//! `${{ parameters.x }}` inserts whatever the user typed, even `${{ … }}`,
//! and nothing is rendered twice.

use minijinja::value::Value as JinjaValue;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde_json::{json, Value};

/// A template expression failed to compile or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

impl From<Error> for ExprError {
    fn from(e: Error) -> Self {
        // MiniJinja's display names the problem and the line; no values are echoed.
        let mut message = e.kind().to_string();
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        if let Some(line) = e.line() {
            message = format!("{message} (line {line})");
        }
        ExprError(message)
    }
}

/// The expression engine, built once.
pub struct Expressions {
    env: Environment<'static>,
}

impl std::fmt::Debug for Expressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expressions")
    }
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new()
    }
}

/// The instructions one expression or one skeleton file may take (a
/// thousand-line file takes a few thousand; a runaway loop hits this).
pub const EXPRESSION_FUEL: u64 = 2_000_000;

fn to_jinja(value: &Value) -> JinjaValue {
    JinjaValue::from_serialize(value)
}

fn from_jinja(value: &JinjaValue) -> Result<Value, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

impl Expressions {
    /// The environment: `${{ }}` variables, `{% %}` blocks, `{# #}` comments,
    /// missing attributes render as empty (as in Nunjucks), and the Backstage filters.
    pub fn new() -> Self {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .variable_delimiters("${{", "}}")
            .block_delimiters("{%", "%}")
            .comment_delimiters("{#", "#}")
            .build()
            .expect("valid delimiters");
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_keep_trailing_newline(true);
        // A template (or an answer it loops over) can never stall the server:
        // every evaluation and file render stops after this much work.
        env.set_fuel(Some(EXPRESSION_FUEL));
        env.add_filter("parseRepoUrl", |raw: String| -> Result<JinjaValue, Error> {
            let url = paved_shared::forms::parse_repo_url(&raw).map_err(invalid)?;
            let mut out = json!({"host": url.host, "repo": url.repo});
            if let Some(owner) = url.owner {
                out["owner"] = json!(owner);
            }
            for (k, v) in url.extra {
                out[k] = json!(v);
            }
            Ok(to_jinja(&out))
        });
        env.add_filter("projectSlug", |raw: String| -> Result<String, Error> {
            let url = paved_shared::forms::parse_repo_url(&raw).map_err(invalid)?;
            Ok(match url.owner {
                Some(owner) => format!("{owner}/{}", url.repo),
                None => url.repo,
            })
        });
        env.add_filter(
            "parseEntityRef",
            |raw: String, defaults: Option<JinjaValue>| -> Result<JinjaValue, Error> {
                let get = |key: &str| {
                    defaults
                        .as_ref()
                        .and_then(|d| d.get_attr(key).ok())
                        .filter(|v| !v.is_undefined() && !v.is_none())
                        .map(|v| v.to_string())
                };
                let (kind, rest) = match raw.split_once(':') {
                    Some((k, r)) => (Some(k.to_owned()), r.to_owned()),
                    None => (get("defaultKind"), raw.clone()),
                };
                let (namespace, name) = match rest.split_once('/') {
                    Some((ns, n)) => (ns.to_owned(), n.to_owned()),
                    None => (
                        get("defaultNamespace").unwrap_or_else(|| "default".into()),
                        rest,
                    ),
                };
                if name.is_empty() {
                    return Err(invalid(format!("`{raw}` is not an entity reference")));
                }
                Ok(to_jinja(&json!({
                    "kind": kind.unwrap_or_default(),
                    "namespace": namespace,
                    "name": name,
                })))
            },
        );
        env.add_filter(
            "pick",
            |value: JinjaValue, key: String| -> Result<JinjaValue, Error> {
                let mut current = value;
                for part in key.split('.') {
                    current = current.get_attr(part)?;
                }
                Ok(current)
            },
        );
        env.add_filter("dump", |value: JinjaValue| -> Result<String, Error> {
            let json = from_jinja(&value)?;
            serde_json::to_string(&json).map_err(|e| invalid(e.to_string()))
        });
        Self { env }
    }

    /// Renders a template string (a skeleton file, a file name, a mixed input string).
    pub fn render(&self, template: &str, context: &Value) -> Result<String, ExprError> {
        Ok(self.env.render_str(template, to_jinja(context))?)
    }

    /// Evaluates one expression (`parameters.name | lower`) to a value.
    pub fn expression(&self, expr: &str, context: &Value) -> Result<Value, ExprError> {
        let compiled = self.env.compile_expression(expr)?;
        let value = compiled.eval(to_jinja(context))?;
        Ok(from_jinja(&value)?)
    }

    /// Evaluates every string in `input` (objects and lists recursively).
    pub fn evaluate(&self, input: &Value, context: &Value) -> Result<Value, ExprError> {
        match input {
            Value::String(s) => match single_expression(s) {
                Some(expr) => self.expression(expr, context),
                None if s.contains("${{") || s.contains("{%") => {
                    Ok(Value::String(self.render(s, context)?))
                }
                None => Ok(input.clone()),
            },
            Value::Array(items) => items
                .iter()
                .map(|i| self.evaluate(i, context))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    out.insert(k.clone(), self.evaluate(v, context)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Checks that a template string compiles (for registration).
    pub fn check(&self, template: &str) -> Result<(), ExprError> {
        match single_expression(template) {
            Some(expr) => {
                self.env.compile_expression(expr)?;
            }
            None => {
                self.env.template_from_str(template)?;
            }
        }
        Ok(())
    }
}

/// `${{ expr }}` and nothing else (surrounding spaces allowed) → `expr`.
pub fn single_expression(s: &str) -> Option<&str> {
    let trimmed = s.trim();
    let inner = trimmed.strip_prefix("${{")?.strip_suffix("}}")?;
    if inner.contains("${{") || inner.contains("}}") {
        return None;
    }
    Some(inner.trim())
}

/// Whether a step's `if` value means "run": Nunjucks truthiness.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != "false",
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: a template whose loops would run for ever (or for hours) is
    /// stopped by the fuel limit with an error instead of stalling a worker.
    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let e = Expressions::new();
        let err = e
            .render(
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
                &ctx(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
        // Ordinary work is far below the limit.
        assert!(e
            .render(
                "{% for t in parameters.tags %}${{ t | upper }} {% endfor %}",
                &ctx()
            )
            .is_ok());
    }

    fn ctx() -> Value {
        json!({
            "parameters": {
                "name": "Checkout-API",
                "owner": "group:default/payments",
                "repoUrl": "git.paved.demo?owner=payments&repo=checkout-api",
                "tags": ["rust", "llm"],
                "evil": "${{ parameters.owner }} {% raw %}",
                "replicas": 3,
            },
            "steps": {"publish": {"output": {"remoteUrl": "file:///repos/payments/checkout-api.git"}}},
            "user": {"entity": {"metadata": {"name": "dana"}}, "ref": "user:default/dana"},
        })
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let e = Expressions::new();
        let input = json!({
            "tags": "${{ parameters.tags }}",
            "replicas": "${{ parameters.replicas }}",
            "remote": "${{ steps['publish'].output.remoteUrl }}",
            "remote_dot": "${{ steps.publish.output.remoteUrl }}",
            "mixed": "This is ${{ parameters.name | lower }} by ${{ user.entity.metadata.name }}",
            "missing": "${{ parameters.nothing.deeper }}",
            "plain": "no expressions",
            "nested": [{"n": "${{ parameters.name | upper }}"}],
        });
        let out = e.evaluate(&input, &ctx()).unwrap();
        assert_eq!(out["tags"], json!(["rust", "llm"]));
        assert_eq!(out["replicas"], json!(3));
        assert_eq!(out["remote"], out["remote_dot"]);
        assert_eq!(out["mixed"], "This is checkout-api by dana");
        assert_eq!(out["missing"], Value::Null);
        assert_eq!(out["plain"], "no expressions");
        assert_eq!(out["nested"][0]["n"], "CHECKOUT-API");
    }

    #[test]
    fn backstage_filters() {
        let e = Expressions::new();
        let c = ctx();
        assert_eq!(
            e.expression("parameters.owner | parseEntityRef | pick('name')", &c)
                .unwrap(),
            "payments"
        );
        assert_eq!(
            e.expression("'payments' | parseEntityRef({'defaultKind': 'group'})", &c)
                .unwrap(),
            json!({"kind": "group", "namespace": "default", "name": "payments"})
        );
        assert_eq!(
            e.expression("parameters.repoUrl | parseRepoUrl", &c)
                .unwrap(),
            json!({"host": "git.paved.demo", "owner": "payments", "repo": "checkout-api"})
        );
        assert_eq!(
            e.expression("parameters.repoUrl | projectSlug", &c)
                .unwrap(),
            "payments/checkout-api"
        );
        assert_eq!(
            e.render("name: ${{ parameters.name | dump }}", &c).unwrap(),
            "name: \"Checkout-API\""
        );
        assert_eq!(
            e.expression("parameters.name | replace('-', '_') | lower", &c)
                .unwrap(),
            "checkout_api"
        );
        assert!(e.expression("'not-a-repo-url' | parseRepoUrl", &c).is_err());
    }

    #[test]
    fn answers_are_data_and_never_evaluated() {
        let e = Expressions::new();
        let out = e
            .evaluate(&json!("${{ parameters.evil }}"), &ctx())
            .unwrap();
        assert_eq!(out, "${{ parameters.owner }} {% raw %}");
        let rendered = e.render("value: ${{ parameters.evil }}\n", &ctx()).unwrap();
        assert_eq!(rendered, "value: ${{ parameters.owner }} {% raw %}\n");
    }

    #[test]
    fn blocks_and_truthiness() {
        let e = Expressions::new();
        let t = "{% if parameters.replicas > 2 %}many{% else %}few{% endif %}";
        assert_eq!(e.render(t, &ctx()).unwrap(), "many");
        assert!(truthy(&json!("x")) && !truthy(&json!("")) && !truthy(&Value::Null));
        assert!(!truthy(&json!(false)) && truthy(&json!(true)) && !truthy(&json!("false")));
        assert!(
            e.check("${{ parameters.name | nosuchfilter }}").is_err()
                || e.render("${{ parameters.name | nosuchfilter }}", &ctx())
                    .is_err()
        );
        assert!(e.check("${{ parameters.name").is_err());
    }
}
