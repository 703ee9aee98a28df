//! conftest's result model and output formats (`stdout`, `json`, `tap`,
//! `table`, `junit`, `github`, `sarif`), so CI systems that read conftest
//! read Paved. Output is in a stable order: files as given, then namespaces.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// One failure, warning or error: where, which policy, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub message: String,
    /// The line of the document the object starts on (from 1).
    pub line: usize,
    /// `Kind/namespace/name` of the object.
    pub object: String,
    /// The constraint name, or `namespace.rule` for plain Rego.
    pub policy: String,
    pub details: Value,
}

/// The results of one file under one namespace, as conftest groups them.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub file: String,
    pub namespace: String,
    pub successes: usize,
    pub failures: Vec<Item>,
    pub warnings: Vec<Item>,
}

/// Counts over all results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub tests: usize,
    pub passed: usize,
    pub warnings: usize,
    pub failures: usize,
}

pub fn totals(results: &[CheckResult]) -> Totals {
    let mut t = Totals::default();
    for r in results {
        t.passed += r.successes;
        t.warnings += r.warnings.len();
        t.failures += r.failures.len();
    }
    t.tests = t.passed + t.warnings + t.failures;
    t
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// conftest's summary line.
pub fn summary(results: &[CheckResult]) -> String {
    let t = totals(results);
    format!(
        "{}, {} passed, {}, {}, 0 exceptions",
        plural(t.tests, "test"),
        t.passed,
        plural(t.warnings, "warning"),
        plural(t.failures, "failure")
    )
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Stdout,
    Json,
    Tap,
    Table,
    Junit,
    Github,
    Sarif,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "stdout" => Format::Stdout,
            "json" => Format::Json,
            "tap" => Format::Tap,
            "table" => Format::Table,
            "junit" => Format::Junit,
            "github" => Format::Github,
            "sarif" => Format::Sarif,
            _ => return None,
        })
    }
}

/// Render results in a format. `color` applies to `stdout` only.
pub fn render(results: &[CheckResult], format: Format, color: bool, exit_code: i32) -> String {
    match format {
        Format::Stdout => stdout(results, color),
        Format::Json => json_output(results),
        Format::Tap => tap(results),
        Format::Table => table(results),
        Format::Junit => junit(results),
        Format::Github => github(results),
        Format::Sarif => sarif(results, exit_code),
    }
}

fn indicator(file: &str, line: Option<usize>) -> String {
    match (file, line) {
        ("-", None) => "-".into(),
        ("-", Some(l)) => format!("- -:{l}"),
        (f, None) => format!("- {f}"),
        (f, Some(l)) => format!("- {f}:{l}"),
    }
}

fn paint(text: &str, code: u8, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn stdout(results: &[CheckResult], color: bool) -> String {
    let mut out = String::new();
    for r in results {
        for (label, code, items) in [("WARN", 33, &r.warnings), ("FAIL", 31, &r.failures)] {
            for item in items {
                let _ = writeln!(
                    out,
                    "{} {} - {} - {}",
                    paint(label, code, color),
                    indicator(&r.file, Some(item.line)),
                    r.namespace,
                    item.message
                );
            }
        }
    }
    let t = totals(results);
    let code = if t.failures > 0 {
        31
    } else if t.warnings > 0 {
        33
    } else {
        32
    };
    let _ = writeln!(out, "\n{}", paint(&summary(results), code, color));
    out
}

fn item_json(item: &Item, file: &str, query: &str) -> Value {
    let mut metadata = Map::new();
    metadata.insert("query".into(), json!(query));
    metadata.insert("object".into(), json!(item.object));
    metadata.insert("policy".into(), json!(item.policy));
    if item.details.as_object().is_some_and(|d| !d.is_empty()) {
        metadata.insert("details".into(), item.details.clone());
    }
    json!({
        "msg": item.message,
        "loc": {"file": if file == "-" { "" } else { file }, "line": item.line},
        "metadata": metadata,
    })
}

fn query_of(r: &CheckResult, item: &Item, warn: bool) -> String {
    if item.policy.contains('.') {
        format!("data.{}", item.policy)
    } else {
        format!(
            "data.{}.{}",
            r.namespace,
            if warn { "warn" } else { "violation" }
        )
    }
}

fn json_output(results: &[CheckResult]) -> String {
    let list: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert(
                "filename".into(),
                json!(if r.file == "-" { "" } else { r.file.as_str() }),
            );
            o.insert("namespace".into(), json!(r.namespace));
            o.insert("successes".into(), json!(r.successes));
            if !r.warnings.is_empty() {
                o.insert(
                    "warnings".into(),
                    r.warnings
                        .iter()
                        .map(|i| item_json(i, &r.file, &query_of(r, i, true)))
                        .collect(),
                );
            }
            if !r.failures.is_empty() {
                o.insert(
                    "failures".into(),
                    r.failures
                        .iter()
                        .map(|i| item_json(i, &r.file, &query_of(r, i, false)))
                        .collect(),
                );
            }
            Value::Object(o)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

fn tap(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        let total = r.successes + r.failures.len() + r.warnings.len();
        if total == 0 {
            continue;
        }
        let _ = writeln!(out, "1..{total}");
        let mut n = 0;
        let mut not_ok = |out: &mut String, items: &[Item]| {
            for item in items {
                n += 1;
                let _ = writeln!(
                    out,
                    "not ok {n} {} - {} - {}",
                    indicator(&r.file, Some(item.line)),
                    r.namespace,
                    item.message
                );
            }
        };
        not_ok(&mut out, &r.failures);
        if !r.warnings.is_empty() {
            out.push_str("# warnings\n");
            not_ok(&mut out, &r.warnings);
        }
        let mut n = r.failures.len() + r.warnings.len();
        if r.successes > 0 {
            out.push_str("# successes\n");
            for _ in 0..r.successes {
                n += 1;
                let _ = writeln!(
                    out,
                    "ok {n} {} - {} - SUCCESS",
                    indicator(&r.file, None),
                    r.namespace
                );
            }
        }
    }
    out
}

fn table(results: &[CheckResult]) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for r in results {
        for _ in 0..r.successes {
            rows.push([
                "success".into(),
                r.file.clone(),
                r.namespace.clone(),
                "SUCCESS".into(),
            ]);
        }
        for (label, items) in [("warning", &r.warnings), ("failure", &r.failures)] {
            for item in items {
                rows.push([
                    label.into(),
                    format!("{}:{}", r.file, item.line),
                    r.namespace.clone(),
                    item.message.replace('\n', " "),
                ]);
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let header = ["RESULT", "FILE", "NAMESPACE", "MESSAGE"];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let mut out = line("┌", "┬", "┐");
    let centered: Vec<String> = header
        .iter()
        .zip(widths)
        .map(|(h, w)| {
            let pad = w - h.len();
            let left = pad / 2;
            format!(" {}{}{} ", " ".repeat(left), h, " ".repeat(pad - left))
        })
        .collect();
    let _ = writeln!(out, "│{}│", centered.join("│"));
    out.push_str(&line("├", "┼", "┤"));
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "│{}│", cells.join("│"));
    }
    out.push_str(&line("└", "┴", "┘"));
    out
}

/// XML escaping as Go's encoding/xml writes it.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

fn junit(results: &[CheckResult]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>");
    let mut namespaces: Vec<&str> = results.iter().map(|r| r.namespace.as_str()).collect();
    namespaces.sort();
    namespaces.dedup();
    if namespaces.is_empty() {
        out.push_str("</testsuites>\n");
        return out;
    }
    out.push('\n');
    for ns in namespaces {
        let group: Vec<&CheckResult> = results.iter().filter(|r| r.namespace == ns).collect();
        let tests: usize = group
            .iter()
            .map(|r| r.successes + r.failures.len() + r.warnings.len())
            .sum();
        let failures: usize = group
            .iter()
            .map(|r| r.failures.len() + r.warnings.len())
            .sum();
        let suite = xml_escape(&format!("conftest.{ns}"));
        let _ = writeln!(
            out,
            "\t<testsuite tests=\"{tests}\" failures=\"{failures}\" time=\"0.000\" name=\"{suite}\">"
        );
        out.push_str("\t\t<properties>\n\t\t\t<property name=\"paved.version\" value=\"");
        out.push_str(env!("CARGO_PKG_VERSION"));
        out.push_str("\"></property>\n\t\t</properties>\n");
        for r in group {
            for item in r.warnings.iter().chain(&r.failures) {
                let first = item.message.lines().next().unwrap_or("");
                let name = xml_escape(&format!("{}:{} - {first}", r.file, item.line));
                let _ = writeln!(
                    out,
                    "\t\t<testcase classname=\"{suite}\" name=\"{name}\" time=\"0.000\">\n\t\t\t<failure message=\"Failed\" type=\"\">{}</failure>\n\t\t</testcase>",
                    xml_escape(&item.message)
                );
            }
            for _ in 0..r.successes {
                let _ = writeln!(
                    out,
                    "\t\t<testcase classname=\"{suite}\" name=\"{}\" time=\"0.000\"></testcase>",
                    xml_escape(&r.file)
                );
            }
        }
        out.push_str("\t</testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn github_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace(':', "%3A")
        .replace(',', "%2C")
}

fn github(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        let policies = r.successes + r.failures.len() + r.warnings.len();
        let _ = writeln!(
            out,
            "::group::Testing {:?} against {policies} policies in namespace {:?}",
            r.file, r.namespace
        );
        for (level, items) in [("error", &r.failures), ("warning", &r.warnings)] {
            for item in items {
                let _ = writeln!(
                    out,
                    "::{level} file={},line={}::{}",
                    github_escape(&r.file),
                    item.line,
                    item.message.replace('\n', "%0A")
                );
            }
        }
        let _ = writeln!(
            out,
            "::notice file={},line=1::Number of successful checks: {}",
            github_escape(&r.file),
            r.successes
        );
        out.push_str("::endgroup::\n");
    }
    let _ = writeln!(out, "{}", summary(results));
    out
}

fn sarif(results: &[CheckResult], exit_code: i32) -> String {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<String> = Vec::new();
    let mut sarif_results = Vec::new();
    let mut rule_index = |id: String, text: &str, properties: Value, rules: &mut Vec<Value>| {
        if let Some(i) = rule_ids.iter().position(|r| *r == id) {
            return i;
        }
        let mut rule = json!({"id": id, "shortDescription": {"text": text}});
        if properties.as_object().is_some_and(|p| !p.is_empty()) {
            rule["properties"] = properties;
        }
        rules.push(rule);
        rule_ids.push(id);
        rule_ids.len() - 1
    };
    let location = |file: &str, line: Option<usize>| {
        let mut physical = json!({"artifactLocation": {"uri": file}});
        if let Some(line) = line {
            physical["region"] = json!({"startLine": line, "endLine": line});
        }
        json!([{ "physicalLocation": physical }])
    };
    for r in results {
        for (kind, level, text, items) in [
            ("deny", "error", "Policy violation", &r.failures),
            ("warn", "warning", "Policy warning", &r.warnings),
        ] {
            for item in items {
                let id = format!("{}/{kind}", r.namespace);
                let idx = rule_index(
                    id.clone(),
                    text,
                    json!({"query": query_of(r, item, kind == "warn"), "policy": item.policy}),
                    &mut rules,
                );
                sarif_results.push(json!({
                    "ruleId": id, "ruleIndex": idx, "level": level,
                    "message": {"text": item.message},
                    "locations": location(&r.file, Some(item.line)),
                }));
            }
        }
        if r.failures.is_empty() && r.warnings.is_empty() {
            let (kind, text) = if r.successes > 0 {
                ("success", "Policy was satisfied successfully")
            } else {
                ("skip", "Policy check was skipped")
            };
            let id = format!("{}/{kind}", r.namespace);
            let idx = rule_index(id.clone(), text, json!({"description": text}), &mut rules);
            sarif_results.push(json!({
                "ruleId": id, "ruleIndex": idx, "level": "none",
                "message": {"text": text},
                "locations": location(&r.file, None),
            }));
        }
    }
    let t = totals(results);
    let description = if t.failures > 0 {
        "Policy violations found"
    } else if t.warnings > 0 {
        "Policy warnings found"
    } else {
        "No policy violations found"
    };
    let report = json!({
        "version": "2.1.0",
        "$schema": "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/main/sarif-2.1/schema/sarif-schema-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "informationUri": "https://github.com/paved-dev/paved",
                "name": "paved",
                "rules": rules,
                "version": env!("CARGO_PKG_VERSION"),
            }},
            "invocations": [{
                "executionSuccessful": exit_code != 3,
                "exitCode": exit_code,
                "exitCodeDescription": description,
            }],
            "results": sarif_results,
        }],
    });
    serde_json::to_string(&report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<CheckResult> {
        vec![CheckResult {
            file: "k8s/web.yaml".into(),
            namespace: "no-openai-key".into(),
            successes: 1,
            failures: vec![Item {
                message: "first failure".into(),
                line: 7,
                object: "Pod/web".into(),
                policy: "no-openai-key".into(),
                details: json!({}),
            }],
            warnings: vec![Item {
                message: "first warning".into(),
                line: 20,
                object: "Service/web".into(),
                policy: "main.warn".into(),
                details: json!({}),
            }],
        }]
    }

    #[test]
    fn stdout_matches_conftest() {
        assert_eq!(
            render(&sample(), Format::Stdout, false, 1),
            "WARN - k8s/web.yaml:20 - no-openai-key - first warning\nFAIL - k8s/web.yaml:7 - no-openai-key - first failure\n\n3 tests, 1 passed, 1 warning, 1 failure, 0 exceptions\n"
        );
    }

    #[test]
    fn tap_and_github() {
        let tap = render(&sample(), Format::Tap, false, 1);
        assert!(tap.starts_with("1..3\nnot ok 1 - k8s/web.yaml:7 - no-openai-key - first failure\n# warnings\nnot ok 2 "), "{tap}");
        assert!(
            tap.ends_with("# successes\nok 3 - k8s/web.yaml - no-openai-key - SUCCESS\n"),
            "{tap}"
        );
        let gh = render(&sample(), Format::Github, false, 1);
        assert!(
            gh.contains("::error file=k8s/web.yaml,line=7::first failure\n"),
            "{gh}"
        );
        assert!(
            gh.contains("::warning file=k8s/web.yaml,line=20::first warning\n"),
            "{gh}"
        );
        assert!(gh.starts_with(
            "::group::Testing \"k8s/web.yaml\" against 3 policies in namespace \"no-openai-key\""
        ));
    }

    #[test]
    fn table_lines_up() {
        let t = render(&sample(), Format::Table, false, 1);
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{t}");
        assert!(t.contains("│ failure │ k8s/web.yaml:7 "), "{t}");
    }

    #[test]
    fn junit_escapes() {
        let mut r = sample();
        r[0].failures[0].message = "a <b> & \"c\"\nmore".into();
        let x = render(&r, Format::Junit, false, 1);
        assert!(x.contains("<failure message=\"Failed\" type=\"\">a &lt;b&gt; &amp; &#34;c&#34;&#xA;more</failure>"), "{x}");
        assert!(x.contains("tests=\"3\" failures=\"2\""), "{x}");
    }
}
