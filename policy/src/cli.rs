//! `paved policy …`: conftest's `test` and Gatekeeper's `gator verify`, one
//! engine. Exit codes: 0 clean, 1 violations (or, with `--fail-on-warn`,
//! warnings only), 2 violations with `--fail-on-warn`, 3 errors (a policy
//! that does not compile, no policies, an unknown namespace, unreadable
//! input): never a silent pass.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::Value;

use crate::constraint::EnforcementPoint;
use crate::docs::{Document, SourceFile};
use crate::report::{render, CheckResult, Format, Item};
use crate::set::{PolicySet, Severity, ADMISSION_PACKAGE, DEFAULT_NAMESPACE};
use crate::suite::{find_suites, run_suite, Outcome};

/// Where the CLI reads and writes, and how it fetches a published bundle.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// GET a URL's body (the portal's `/api/policy/v1/bundle`).
    pub fetch: &'a dyn Fn(&str) -> Result<String, String>,
}

pub const USAGE: &str = "\
Usage:
  paved policy test [FILE|DIR|-]... [options]   check manifests (conftest's conventions)
  paved policy verify [DIR|SUITE]...            run Gatekeeper suites (gator verify's format)

Options for test:
  -p, --policy PATH|URL   policies: folders or files of ConstraintTemplates, Constraints
                          and .rego files, or the portal's bundle URL
                          (…/api/policy/v1/bundle); repeatable; default ./policies
  -o, --output FORMAT     stdout (default), json, tap, table, junit, github, sarif
  -n, --namespace NS      Rego namespaces to run besides the constraints (default:
                          main and kubernetes.admission); repeatable
      --all-namespaces    every Rego namespace
      --fail-on-warn      exit 1 on warnings, 2 on violations
      --point POINT       enforcement point whose actions apply: ci (default),
                          scaffolder, admission
      --no-color          plain stdout output

Exit codes: 0 clean, 1 violations, 2 violations with --fail-on-warn, 3 errors.
";

struct TestArgs {
    inputs: Vec<String>,
    policies: Vec<String>,
    format: Format,
    namespaces: Vec<String>,
    all_namespaces: bool,
    fail_on_warn: bool,
    point: EnforcementPoint,
    color: bool,
}

fn parse_test_args(args: &[String]) -> Result<TestArgs, String> {
    let mut t = TestArgs {
        inputs: Vec::new(),
        policies: Vec::new(),
        format: Format::Stdout,
        namespaces: Vec::new(),
        all_namespaces: false,
        fail_on_warn: false,
        point: EnforcementPoint::Ci,
        color: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-p" | "--policy" => t.policies.push(value(flag)?),
            "-o" | "--output" => {
                let v = value(flag)?;
                t.format = Format::parse(&v).ok_or_else(|| {
                    format!(
                        "unknown output format {v:?} (stdout, json, tap, table, junit, github, sarif)"
                    )
                })?;
            }
            "-n" | "--namespace" => t.namespaces.push(value(flag)?),
            "--all-namespaces" => t.all_namespaces = true,
            "--fail-on-warn" => t.fail_on_warn = true,
            "--no-color" => t.color = false,
            "--point" => {
                let v = value(flag)?;
                t.point = EnforcementPoint::from_label(&v)
                    .filter(|p| *p != EnforcementPoint::Audit)
                    .ok_or_else(|| {
                        format!("unknown enforcement point {v:?} (ci, scaffolder, admission)")
                    })?;
            }
            "-h" | "--help" => return Err(String::new()),
            "-" => t.inputs.push("-".into()),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ => t.inputs.push(arg.clone()),
        }
    }
    if t.inputs.is_empty() {
        return Err("missing required arguments: files, folders or - for standard input".into());
    }
    if t.policies.is_empty() {
        t.policies.push("policies".into());
    }
    Ok(t)
}

/// Run `paved policy <args>`; returns the exit code.
pub fn main(args: &[String], io: &mut Io<'_>) -> i32 {
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..], io),
        Some("verify") => verify(&args[1..], io),
        Some("-h" | "--help" | "help") | None => {
            let _ = io.stdout.write_all(USAGE.as_bytes());
            if args.is_empty() {
                3
            } else {
                0
            }
        }
        Some(other) => {
            let _ = writeln!(io.stderr, "Error: unknown command {other:?}\n\n{USAGE}");
            3
        }
    }
}

/// Load policies from folders, files and bundle URLs.
pub fn load_policies(sources: &[String], io: &mut Io<'_>) -> Result<PolicySet, String> {
    let mut docs: Vec<Document> = Vec::new();
    let mut rego: Vec<SourceFile> = Vec::new();
    let mut paths = Vec::new();
    for source in sources {
        if source.starts_with("http://") || source.starts_with("https://") {
            let body = (io.fetch)(source).map_err(|e| format!("fetching {source}: {e}"))?;
            let bundle: Value = serde_json::from_str(&body)
                .map_err(|e| format!("{source}: not a policy bundle: {e}"))?;
            let (d, r) = bundle_contents(source, &bundle)?;
            docs.extend(d);
            rego.extend(r);
        } else {
            paths.push(PathBuf::from(source));
        }
    }
    let mut set = if paths.is_empty() {
        PolicySet::default()
    } else {
        PolicySet::load_paths(&paths).map_err(|e| e.to_string())?
    };
    if !docs.is_empty() || !rego.is_empty() {
        // Merge the bundle's policies with the folders'.
        let bundle = PolicySet::build(&docs, &rego).map_err(|e| e.to_string())?;
        for (kind, t) in bundle.templates {
            set.templates.entry(kind).or_insert(t);
        }
        set.constraints.extend(bundle.constraints);
        if set.rego.is_none() {
            set.rego = bundle.rego;
        }
    }
    Ok(set)
}

/// The documents and Rego files of a bundle (`GET /api/policy/v1/bundle`).
pub fn bundle_contents(
    source: &str,
    bundle: &Value,
) -> Result<(Vec<Document>, Vec<SourceFile>), String> {
    let list = |key: &str| {
        bundle
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut docs = Vec::new();
    for (i, value) in list("templates")
        .into_iter()
        .chain(list("constraints"))
        .enumerate()
    {
        docs.push(Document {
            file: source.to_string(),
            index: i,
            line: 1,
            value,
        });
    }
    let mut rego = Vec::new();
    for file in list("rego") {
        let name = file
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("bundle.rego");
        let source_text = file
            .get("source")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{source}: a rego entry without source"))?;
        rego.push(SourceFile::new(name, source_text));
    }
    if docs.is_empty() && rego.is_empty() {
        return Err(format!("{source}: the bundle holds no policies"));
    }
    Ok((docs, rego))
}

/// Read the inputs: files, folders (YAML and JSON inside, recursively) and `-`.
fn read_inputs(inputs: &[String], io: &mut Io<'_>) -> Result<Vec<SourceFile>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if input == "-" {
            let mut text = String::new();
            io.stdin
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
            files.push(SourceFile::new("-", text));
            continue;
        }
        let path = PathBuf::from(input);
        if path.is_dir() {
            let mut found = Vec::new();
            walk_manifests(&path, &mut found)?;
            found.sort();
            for p in found {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                files.push(SourceFile::new(p.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{input}: {e}"))?;
            files.push(SourceFile::new(input.clone(), text));
        }
    }
    if files.is_empty() {
        return Err("no files found".into());
    }
    Ok(files)
}

fn walk_manifests(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
    {
        let p = entry.path();
        if p.is_dir() {
            walk_manifests(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

fn test(args: &[String], io: &mut Io<'_>) -> i32 {
    let args = match parse_test_args(args) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            let _ = io.stdout.write_all(USAGE.as_bytes());
            return 0;
        }
        Err(e) => {
            let _ = writeln!(io.stderr, "Error: {e}\n\n{USAGE}");
            return 3;
        }
    };
    match run_test(&args, io) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io.stderr, "Error: {e}");
            3
        }
    }
}

fn run_test(args: &TestArgs, io: &mut Io<'_>) -> Result<i32, String> {
    let set = load_policies(&args.policies, io)?;
    if set.is_empty() {
        return Err(format!("no policies found in {}", args.policies.join(", ")));
    }
    let loaded = set.namespaces();
    let namespaces: Vec<String> = if args.all_namespaces {
        loaded.clone()
    } else if args.namespaces.is_empty() {
        vec![DEFAULT_NAMESPACE.to_string(), ADMISSION_PACKAGE.to_string()]
    } else {
        for ns in &args.namespaces {
            if !loaded.contains(ns) {
                return Err(format!(
                    "unknown namespace {ns:?}: the policies define {}",
                    if loaded.is_empty() {
                        "no Rego namespaces".to_string()
                    } else {
                        loaded.join(", ")
                    }
                ));
            }
        }
        args.namespaces.clone()
    };
    let files = read_inputs(&args.inputs, io)?;
    let mut results: Vec<CheckResult> = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        let docs = file.documents().map_err(|e| e.to_string())?;
        let checks = set.check_documents(&docs, args.point, &namespaces);
        // One result per (file, namespace): constraints are namespaces of their own.
        let mut groups: Vec<CheckResult> = Vec::new();
        let group = |groups: &mut Vec<CheckResult>, ns: &str| -> usize {
            match groups.iter().position(|g| g.namespace == ns) {
                Some(i) => i,
                None => {
                    groups.push(CheckResult {
                        file: file.name.clone(),
                        namespace: ns.to_string(),
                        successes: 0,
                        failures: Vec::new(),
                        warnings: Vec::new(),
                    });
                    groups.len() - 1
                }
            }
        };
        for check in checks {
            let object = check.document.object_ref();
            for evaluated in &check.evaluated {
                let i = group(&mut groups, evaluated);
                let hit = check.findings.iter().any(|f| {
                    f.severity >= Severity::Warning && namespace_of(f) == evaluated.as_str()
                });
                if !hit {
                    groups[i].successes += 1;
                }
            }
            for f in &check.findings {
                let item = Item {
                    message: f.message.clone(),
                    line: check.document.line,
                    object: object.clone(),
                    policy: f.policy.clone(),
                    details: f.details.clone(),
                };
                match f.severity {
                    Severity::Error => errors.push(format!(
                        "{}:{} ({object}): {}: {}",
                        file.name, check.document.line, f.policy, f.message
                    )),
                    Severity::Failure => {
                        let i = group(&mut groups, namespace_of(f));
                        groups[i].failures.push(item);
                    }
                    Severity::Warning => {
                        let i = group(&mut groups, namespace_of(f));
                        groups[i].warnings.push(item);
                    }
                    Severity::Dryrun => {}
                }
            }
        }
        results.extend(groups);
    }
    if !errors.is_empty() {
        return Err(format!(
            "policies could not be evaluated:\n  {}",
            errors.join("\n  ")
        ));
    }
    let totals = crate::report::totals(&results);
    let code = match (args.fail_on_warn, totals.failures > 0, totals.warnings > 0) {
        (_, false, false) => 0,
        (false, true, _) => 1,
        (false, false, true) => 0,
        (true, true, _) => 2,
        (true, false, true) => 1,
    };
    let text = render(&results, args.format, args.color, code);
    io.stdout
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(code)
}

/// The namespace a finding is reported under: its Rego namespace, or its constraint.
fn namespace_of(f: &crate::set::Finding) -> &str {
    if f.namespace.is_empty() {
        &f.policy
    } else {
        &f.namespace
    }
}

fn verify(args: &[String], io: &mut Io<'_>) -> i32 {
    if args.is_empty() || args.iter().any(|a| a.starts_with('-')) {
        let _ = writeln!(
            io.stderr,
            "Error: verify takes folders or suite files\n\n{USAGE}"
        );
        return 3;
    }
    let mut suites = Vec::new();
    for arg in args {
        match find_suites(&PathBuf::from(arg)) {
            Ok(found) => suites.extend(found),
            Err(e) => {
                let _ = writeln!(io.stderr, "Error: {e}");
                return 3;
            }
        }
    }
    if suites.is_empty() {
        let _ = writeln!(io.stderr, "Error: no suites found in {}", args.join(", "));
        return 3;
    }
    let mut failed = false;
    let (mut passed_cases, mut failed_cases, mut skipped) = (0, 0, 0);
    for path in suites {
        let result = run_suite(&path);
        for e in &result.errors {
            failed = true;
            let _ = writeln!(io.stdout, "    --- FAIL: {e}");
        }
        for case in &result.cases {
            match &case.outcome {
                Outcome::Pass => passed_cases += 1,
                Outcome::Skip => {
                    skipped += 1;
                    let _ = writeln!(io.stdout, "    --- SKIP: {}/{}", case.test, case.case);
                }
                Outcome::Fail(m) => {
                    failed_cases += 1;
                    failed = true;
                    let _ = writeln!(io.stdout, "    --- FAIL: {}/{}: {m}", case.test, case.case);
                }
            }
        }
        let _ = writeln!(
            io.stdout,
            "{}\t{}",
            if result.passed() { "ok" } else { "FAIL" },
            result.path
        );
    }
    let _ = writeln!(
        io.stdout,
        "{}: {passed_cases} cases passed, {failed_cases} failed, {skipped} skipped",
        if failed { "FAIL" } else { "PASS" }
    );
    i32::from(failed)
}
