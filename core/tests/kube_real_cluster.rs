//! The same `kube:apply` code against a real cluster, when `KUBECONFIG` is
//! set (kind, k3s or any cluster you may create namespaces in); skipped
//! with the reason printed otherwise. The README's Kubernetes section says
//! how to run it.

use std::time::Duration;

use paved_core::kube::apply::{self, Level, Options, Progress};
use serde_json::json;

struct Print;

#[async_trait::async_trait]
impl Progress for Print {
    async fn line(&self, level: Level, message: &str) {
        println!("{level:?}: {message}");
    }
}

#[tokio::test]
async fn kube_apply_deploys_to_a_real_cluster_and_converges_when_run_again() {
    if std::env::var_os("KUBECONFIG").is_none() {
        println!("skipped: set KUBECONFIG to a cluster where namespaces may be created (kind, k3s) to run this test");
        return;
    }
    let client = kube::Client::try_default()
        .await
        .expect("a client from KUBECONFIG");
    let namespace = format!("paved-e2e-{}", std::process::id());
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "pause"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "pause", "labels": {"backstage.io/kubernetes-id": "pause"}},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pause"}},
                        "template": {"metadata": {"labels": {"app": "pause", "backstage.io/kubernetes-id": "pause"}},
                                     "spec": {"serviceAccountName": "pause",
                                              "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                                              "resources": {"limits": {"cpu": "50m", "memory": "32Mi"}}}]}}}}),
    ];
    let plan = apply::plan(objects, &namespace, "e2e").unwrap();
    let options = Options {
        force: false,
        wait: true,
        timeout: Duration::from_secs(180),
        poll: Duration::from_secs(2),
    };
    let first = apply::run(&client, &plan, &options, &Print).await;
    // Re-running converges: the same objects, nothing new.
    let second = apply::run(&client, &plan, &options, &Print).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let _ = namespaces.delete(&namespace, &Default::default()).await;
    let first = first.expect("the first apply");
    assert!(first.ready);
    assert_eq!(second.expect("the second apply").objects, first.objects);
}
