//! Every suite of the Gatekeeper library, unmodified, through Paved's evaluator.

use std::path::PathBuf;

use paved_policy::suite::{find_suites, run_suite, Outcome};

fn library() -> PathBuf {
    let base = std::env::var("PAVED_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        });
    base.join("gatekeeper-library/library")
}

#[test]
fn every_gatekeeper_library_case_passes() {
    let dir = library();
    assert!(
        dir.is_dir(),
        "the Gatekeeper library is not at {}",
        dir.display()
    );
    let suites = find_suites(&dir).unwrap();
    assert_eq!(suites.len(), 49, "suites found");
    let mut passed = 0;
    let mut failures = Vec::new();
    for path in &suites {
        let result = run_suite(path);
        for e in &result.errors {
            failures.push(format!("{}: {e}", result.path));
        }
        for case in &result.cases {
            match &case.outcome {
                Outcome::Pass => passed += 1,
                Outcome::Skip => failures.push(format!(
                    "{}: {}/{} skipped",
                    result.name, case.test, case.case
                )),
                Outcome::Fail(m) => {
                    failures.push(format!("{}: {}/{}: {m}", result.name, case.test, case.case))
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} passed; failures:\n{}",
        passed,
        failures.join("\n")
    );
    assert_eq!(passed, 270);
}
