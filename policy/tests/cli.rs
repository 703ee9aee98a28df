//! `paved policy test` and `verify`: exit codes, output formats, standard
//! input and line numbers, through the CLI entry point the binary calls.

use std::path::PathBuf;

use paved_policy::cli::{main, Io};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policies() -> String {
    root().join("policies").display().to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: &str) -> Run {
    let mut input = stdin.as_bytes();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let fetch = |url: &str| -> Result<String, String> { Err(format!("offline: {url}")) };
    let mut io = Io {
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
        fetch: &fetch,
    };
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let code = main(&args, &mut io);
    Run {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

const BAD: &str = "# a comment\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: app\n    image: nginx:latest\n    resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n    env: [{name: OPENAI_API_KEY, value: k}]\n";

const GOOD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  securityContext: {runAsNonRoot: true}\n  containers:\n  - name: app\n    image: nginx:1.27.3\n    resources: {requests: {cpu: 1m, memory: 1Mi}, limits: {cpu: 1m, memory: 1Mi}}\n";

#[test]
fn stdin_violations_exit_1_with_file_and_line() {
    let p = policies();
    let r = run(&["test", "-", "-p", &p, "--no-color"], BAD);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("FAIL - -:7 - no-raw-openai-api-key - Pod web: container app declares OPENAI_API_KEY directly"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("FAIL - -:7 - pinned-images - Pod web: container app uses the tag latest"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(" 2 failures, 0 exceptions"),
        "{}",
        r.stdout
    );
    let clean = run(&["test", "-", "-p", &p, "--no-color"], GOOD);
    assert_eq!(clean.code, 0, "{}", clean.stdout);
    assert!(clean.stdout.contains("0 failures"), "{}", clean.stdout);
}

#[test]
fn warnings_and_fail_on_warn() {
    let dir = std::env::temp_dir().join(format!("paved-cli-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("warn.rego"), "package main\n\nwarn contains msg if {\n  input.kind == \"Service\"\n  msg := \"services are checked by the platform team\"\n}\n").unwrap();
    std::fs::write(dir.join("deny.rego"), "package main\n\ndeny contains msg if {\n  input.kind == \"Secret\"\n  msg := \"no Secrets in git\"\n}\n").unwrap();
    let p = dir.display().to_string();
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    assert_eq!(run(&["test", "-", "-p", &p], service).code, 0);
    assert_eq!(
        run(&["test", "-", "-p", &p, "--fail-on-warn"], service).code,
        1
    );
    let both = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: t}\n";
    assert_eq!(run(&["test", "-", "-p", &p], both).code, 1);
    let r = run(
        &["test", "-", "-p", &p, "--fail-on-warn", "--no-color"],
        both,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stdout
            .contains("WARN - -:1 - main - services are checked"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("FAIL - -:5 - main - no Secrets in git"),
        "{}",
        r.stdout
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_exit_3_never_a_silent_pass() {
    let p = policies();
    // No policies at all.
    let empty = std::env::temp_dir().join(format!("paved-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let r = run(&["test", "-", "-p", &empty.display().to_string()], GOOD);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("no policies found"), "{}", r.stderr);
    // A policy that does not compile.
    std::fs::write(
        empty.join("bad.rego"),
        "package main\n\ndeny contains msg if {\n  msg := \n}\n",
    )
    .unwrap();
    let r = run(&["test", "-", "-p", &empty.display().to_string()], GOOD);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("bad.rego"), "{}", r.stderr);
    std::fs::remove_dir_all(&empty).unwrap();
    // An unknown namespace.
    let r = run(&["test", "-", "-p", &p, "-n", "nope"], GOOD);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("unknown namespace \"nope\""),
        "{}",
        r.stderr
    );
    // Unreadable input, a missing file, a bad format.
    assert_eq!(run(&["test", "-", "-p", &p], "kind: [").code, 3);
    assert_eq!(run(&["test", "/nonexistent.yaml", "-p", &p], "").code, 3);
    assert_eq!(run(&["test", "-", "-p", &p, "-o", "xml"], GOOD).code, 3);
    // The inventory-reading template in CI gets the files' objects as inventory: no error.
    let r = run(&["test", "-", "-p", &p], GOOD);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn every_output_format() {
    let p = policies();
    let json = run(&["test", "-", "-p", &p, "-o", "json"], BAD);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let failures: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["failures"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["loc"]["line"], 7);
    assert_eq!(failures[0]["metadata"]["object"], "Pod/shop/web");

    let tap = run(&["test", "-", "-p", &p, "-o", "tap"], BAD).stdout;
    assert!(
        tap.lines().any(|l| l.starts_with("not ok 1 - -:7 - ")),
        "{tap}"
    );

    let table = run(&["test", "-", "-p", &p, "-o", "table"], BAD).stdout;
    assert!(table.contains("│ failure │ -:7 "), "{table}");

    let gh = run(&["test", "-", "-p", &p, "-o", "github"], BAD).stdout;
    assert!(
        gh.contains(
            "::error file=-,line=7::Pod web: container app declares OPENAI_API_KEY directly"
        ),
        "{gh}"
    );

    let junit = run(&["test", "-", "-p", &p, "-o", "junit"], BAD).stdout;
    assert!(
        junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>"),
        "{junit}"
    );
    assert_eq!(junit.matches("<failure ").count(), 2, "{junit}");
    assert_eq!(
        junit.matches("<testsuite ").count(),
        junit.matches("</testsuite>").count()
    );

    let sarif = run(&["test", "-", "-p", &p, "-o", "sarif"], BAD);
    assert_eq!(sarif.code, 1);
    let s: serde_json::Value = serde_json::from_str(&sarif.stdout).unwrap();
    // Valid against SARIF 2.1.0's published schema, clean runs too.
    let schema_path =
        root().join("node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
    let mut schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&schema_path)
            .expect("npm packages installed (scripts/setup.sh test)"),
    )
    .unwrap();
    // The published schema's language pattern has a stray `]` (`…-[a-zA-Z]{2}]?$`),
    // which ECMAScript tolerates and Rust's regex refuses: use the intended pattern.
    for def in ["run", "toolComponent"] {
        let pattern = &mut schema["definitions"][def]["properties"]["language"]["pattern"];
        assert_eq!(pattern, "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$");
        *pattern = serde_json::json!("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$");
    }
    let validator = jsonschema::validator_for(&schema).unwrap();
    let clean: serde_json::Value =
        serde_json::from_str(&run(&["test", "-", "-p", &p, "-o", "sarif"], GOOD).stdout).unwrap();
    for report in [&s, &clean] {
        let errors: Vec<String> = validator
            .iter_errors(report)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
    assert_eq!(clean["runs"][0]["invocations"][0]["exitCode"], 0);
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    let errors: Vec<_> = results.iter().filter(|r| r["level"] == "error").collect();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        7
    );
    let rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
    }
    assert_eq!(s["runs"][0]["invocations"][0]["exitCode"], 1);
}

#[test]
fn verify_runs_suites() {
    let r = run(&["verify", &policies()], "");
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("PASS: "), "{}", r.stdout);
    let r = run(&["verify", "/nonexistent"], "");
    assert_eq!(r.code, 3);
}
