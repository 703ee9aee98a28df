//! Paved's shipped policies (`policies/`): every suite passes, and the
//! platform team's seed policy in its plain OPA form agrees with them.

use std::path::PathBuf;

use paved_policy::docs::SourceFile;
use paved_policy::set::{PolicySet, Severity};
use paved_policy::suite::{find_suites, run_suite, Outcome};
use paved_policy::{EnforcementPoint, Review};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_shipped_policy_has_a_passing_suite() {
    let dir = root().join("policies");
    let suites = find_suites(&dir).unwrap();
    let mut folders: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("template.yaml").is_file())
        .map(|e| e.path())
        .collect();
    folders.sort();
    assert!(folders.len() >= 6, "{folders:?}");
    for folder in &folders {
        assert!(
            suites.iter().any(|s| s.starts_with(folder)),
            "{} has no suite",
            folder.display()
        );
    }
    let mut cases = 0;
    for suite in &suites {
        let r = run_suite(suite);
        assert!(r.errors.is_empty(), "{}: {:?}", r.path, r.errors);
        for c in &r.cases {
            assert_eq!(
                c.outcome,
                Outcome::Pass,
                "{}: {}/{}",
                r.path,
                c.test,
                c.case
            );
            cases += 1;
        }
    }
    assert!(cases >= 14, "{cases}");
}

fn pod(body: &str) -> serde_json::Value {
    serde_yaml::from_str(body).unwrap()
}

#[test]
fn the_seed_policy_in_plain_opa_form_denies_like_the_constraint() {
    let rego = SourceFile::new(
        "seed-admission.rego",
        std::fs::read_to_string(root().join("policy/tests/fixtures/seed-admission.rego")).unwrap(),
    );
    let set = PolicySet::build(&[], &[rego]).unwrap();
    let gatekeeper = PolicySet::load_paths(&[root().join("policies/no-openai-api-key")]).unwrap();
    let cases = [
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec:\n  containers:\n  - name: app\n    env: [{name: OPENAI_API_KEY, value: k}]\n", 1, 1),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\nspec:\n  containers:\n  - {name: one}\n  - {name: two, env: [{name: X, value: y}]}\n  - name: three\n    env: [{name: OPENAI_API_KEY, value: k}]\n", 1, 1),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: x}\nspec:\n  containers:\n  - {name: app, env: [{name: OPENAI_BASE_URL, value: u}]}\n", 0, 0),
        // The seed only reads containers; the shipped constraint also covers init and ephemeral ones.
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: x}\nspec:\n  initContainers:\n  - name: init\n    env: [{name: OPENAI_API_KEY, value: k}]\n  containers: [{name: app}]\n", 0, 1),
    ];
    for (body, seed_hits, constraint_hits) in cases {
        let review = Review::of_request(serde_json::json!({
            "uid": "1", "operation": "CREATE",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": pod(body),
        }));
        let seed = set.check_admission_rego(&review);
        assert_eq!(seed.len(), seed_hits, "{body}: {seed:?}");
        if let Some(f) = seed.first() {
            assert_eq!(f.severity, Severity::Failure, "{}", f.message);
            assert!(
                f.message
                    .contains("direct OPENAI_API_KEY env var is prohibited"),
                "{}",
                f.message
            );
        }
        let ctx = paved_policy::set::Context {
            point: EnforcementPoint::Admission,
            inventory: None,
            namespace: None,
        };
        assert_eq!(
            gatekeeper.check_constraints(&review, ctx).len(),
            constraint_hits,
            "{body}"
        );
    }
}

#[test]
fn a_template_reading_the_inventory_is_an_error_where_there_is_none() {
    let set = PolicySet::load_paths(&[root().join("policies/no-openai-api-key-envfrom")]).unwrap();
    let review = Review::of_object(pod("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\nspec:\n  containers:\n  - name: app\n    envFrom: [{secretRef: {name: s}}]\n"));
    // Scoped to the scaffolder and CI: not evaluated at admission at all.
    let admission = paved_policy::set::Context {
        point: EnforcementPoint::Admission,
        inventory: None,
        namespace: None,
    };
    assert!(set.check_constraints(&review, admission).is_empty());
    let ci = paved_policy::set::Context {
        point: EnforcementPoint::Ci,
        inventory: None,
        namespace: None,
    };
    let findings = set.check_constraints(&review, ci);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].severity, Severity::Error);
    assert!(
        findings[0].message.contains("no inventory"),
        "{}",
        findings[0].message
    );
}

#[test]
fn the_webhook_skips_templates_whose_operations_leave_the_request_out() {
    let template = serde_yaml::from_str::<serde_json::Value>(
        r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenyall}
spec:
  crd: {spec: {names: {kind: K8sDenyAll}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      operations: ["CREATE"]
      rego: |
        package k8sdenyall
        violation[{"msg": "denied"}] { true }
"#,
    )
    .unwrap();
    let constraint = serde_json::json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDenyAll", "metadata": {"name": "deny-all"}});
    let docs: Vec<_> = [template, constraint]
        .into_iter()
        .enumerate()
        .map(|(index, value)| paved_policy::Document {
            file: "t".into(),
            index,
            line: 1,
            value,
        })
        .collect();
    let set = PolicySet::build(&docs, &[]).unwrap();
    let review = |op: &str| {
        Review::of_request(serde_json::json!({"uid": "u", "operation": op,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}},
            "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}}}))
    };
    let at = |point| paved_policy::set::Context {
        point,
        inventory: None,
        namespace: None,
    };
    assert_eq!(
        set.check_constraints(&review("CREATE"), at(EnforcementPoint::Admission))
            .len(),
        1
    );
    assert!(set
        .check_constraints(&review("UPDATE"), at(EnforcementPoint::Admission))
        .is_empty());
    // Elsewhere (gator, the scaffolder) every operation is reviewed, as in Gatekeeper.
    assert_eq!(
        set.check_constraints(&review("UPDATE"), at(EnforcementPoint::Ci))
            .len(),
        1
    );
}
