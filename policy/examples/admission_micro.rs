//! Time per admission check with the shipped policies, without HTTP:
//! `cargo run --release -p paved-policy --example admission_micro`.

use std::path::PathBuf;
use std::time::Instant;

use paved_policy::set::{Context, PolicySet};
use paved_policy::{EnforcementPoint, Review};

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let set = PolicySet::load_paths(&[root.join("policies")]).unwrap();
    let request = serde_json::json!({
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "payments",
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "chat", "namespace": "payments", "labels": {"app": "chat"}},
            "spec": {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "app", "image": "registry.example.com/chat:1.4.2",
                "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}},
                "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}}
    });
    let ctx = Context {
        point: EnforcementPoint::Admission,
        inventory: None,
        namespace: None,
    };
    let n = 5_000;
    let started = Instant::now();
    for _ in 0..n {
        let review = Review::of_request(request.clone());
        let findings = set.check_constraints(&review, ctx);
        assert!(findings.is_empty(), "{findings:?}");
    }
    let per = started.elapsed().as_secs_f64() / n as f64;
    println!(
        "{:.1} µs per admission check ({} constraints)",
        per * 1e6,
        set.constraints.len()
    );
}
