//! What the controllers and the kubelet would do after a workload is written,
//! done at once: a Deployment gets a ReplicaSet and Pods, a StatefulSet its
//! ordinal Pods, both a status. The annotation `stub.paved.dev/rollout: never`
//! makes the new Pods fail to pull their images instead of running.

use serde_json::{json, Value};

use crate::kinds::{by_kind, Kind};
use crate::store::{meta, now, suffix, template_hash, uid, Store};

/// The annotation that makes a rollout never become ready.
pub const ROLLOUT_ANNOTATION: &str = "stub.paved.dev/rollout";

/// The node every Pod runs on.
pub const NODE: &str = "stub-node";

fn kind(name: &str) -> &'static Kind {
    by_kind(name).expect("a built-in kind")
}

fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, at: &str) -> Value {
    let mut c = json!({"type": kind, "status": if status { "True" } else { "False" }});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c["lastTransitionTime"] = json!(at);
    c
}

/// An Event about `about`, as the kubelet or a controller records it.
pub fn event(
    about: &Value,
    kind_type: &str,
    reason: &str,
    message: &str,
    source: &str,
    field_path: Option<&str>,
) -> Value {
    let at = now();
    let hex: String = uid().replace('-', "")[..16].to_owned();
    let mut involved = json!({
        "kind": about["kind"],
        "namespace": about["metadata"]["namespace"],
        "name": about["metadata"]["name"],
        "uid": about["metadata"]["uid"],
        "apiVersion": about["apiVersion"],
        "resourceVersion": about["metadata"]["resourceVersion"],
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    let mut source_json = json!({"component": source});
    if source == "kubelet" {
        source_json["host"] = json!(NODE);
    }
    json!({
        "metadata": {"name": format!("{}.{hex}", meta(about, "name")), "namespace": meta(about, "namespace")},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source_json,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
        "type": kind_type,
        "eventTime": null,
        "reportingComponent": source,
        "reportingInstance": if source == "kubelet" { NODE } else { "" },
    })
}

/// A Pod from `template`, owned by `owner`, running or (`never`) failing to
/// pull its images. Stores it with its Events.
fn create_pod(
    store: &mut Store,
    owner: &Value,
    name: &str,
    template: &Value,
    extra_labels: &Value,
    never: bool,
) {
    let ns = meta(owner, "namespace").to_owned();
    let at = now();
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    for (k, v) in extra_labels.as_object().into_iter().flatten() {
        labels[k] = v.clone();
    }
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!(NODE);
    for (field, default) in [
        ("restartPolicy", "Always"),
        ("schedulerName", "default-scheduler"),
        ("serviceAccountName", "default"),
        ("dnsPolicy", "ClusterFirst"),
    ] {
        if spec[field].is_null() {
            spec[field] = json!(default);
        }
    }
    let containers: Vec<(String, String)> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["image"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|(c, image)| {
            if never {
                json!({
                    "name": c, "image": image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}},
                    "lastState": {},
                })
            } else {
                json!({
                    "name": c, "image": image, "imageID": format!("{image}@sha256:{}", uid().replace('-', "")),
                    "containerID": format!("containerd://{}", uid().replace('-', "")),
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": at}},
                    "lastState": {},
                })
            }
        })
        .collect();
    let unready: Vec<&str> = containers.iter().map(|(c, _)| c.as_str()).collect();
    let not_ready = format!("containers with unready status: [{}]", unready.join(" "));
    let (ready_reason, ready_message) = if never {
        ("ContainersNotReady", not_ready.as_str())
    } else {
        ("", "")
    };
    let n = store.resource_version() % 250 + 2;
    let mut meta_json = json!({
        "name": name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [owner_ref(owner)],
    });
    if owner["kind"] == "ReplicaSet" {
        meta_json["generateName"] = json!(format!("{}-", meta(owner, "name")));
    }
    if let Some(ann) = template["metadata"]["annotations"].as_object() {
        meta_json["annotations"] = json!(ann);
    }
    let pod = json!({
        "metadata": meta_json,
        "spec": spec,
        "status": {
            "phase": if never { "Pending" } else { "Running" },
            "conditions": [
                condition("PodReadyToStartContainers", true, "", "", &at),
                condition("Initialized", true, "", "", &at),
                condition("Ready", !never, ready_reason, ready_message, &at),
                condition("ContainersReady", !never, ready_reason, ready_message, &at),
                condition("PodScheduled", true, "", "", &at),
            ],
            "hostIP": "10.0.0.10",
            "podIP": format!("10.244.0.{n}"),
            "startTime": at,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        },
    });
    let pod = store.put(kind("Pod"), pod);
    let assigned = format!("Successfully assigned {ns}/{name} to {NODE}");
    let mut events = vec![event(
        &pod,
        "Normal",
        "Scheduled",
        &assigned,
        "default-scheduler",
        None,
    )];
    for (c, image) in &containers {
        let fp = format!("spec.containers{{{c}}}");
        if never {
            let failed = format!("Failed to pull image \"{image}\": not found");
            let backoff = format!("Back-off pulling image \"{image}\"");
            events.push(event(
                &pod,
                "Warning",
                "Failed",
                &failed,
                "kubelet",
                Some(&fp),
            ));
            events.push(event(
                &pod,
                "Normal",
                "BackOff",
                &backoff,
                "kubelet",
                Some(&fp),
            ));
        } else {
            let started = format!("Started container {c}");
            events.push(event(
                &pod,
                "Normal",
                "Started",
                &started,
                "kubelet",
                Some(&fp),
            ));
        }
    }
    for e in events {
        store.put(kind("Event"), e);
    }
}

fn never(obj: &Value) -> bool {
    obj["metadata"]["annotations"][ROLLOUT_ANNOTATION] == "never"
}

/// Drops zero counts, as the API's `omitempty` does.
fn without_zeros(mut status: Value) -> Value {
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| v != &json!(0));
    }
    status
}

/// Runs the workload controllers for `obj`, just stored as `kind`.
/// Runs the workload controllers for `obj`, just stored as `kind`. For a
/// Deployment that is not ready, returns its progress deadline in seconds
/// (`spec.progressDeadlineSeconds`, default 600), after which
/// [`deadline_passed`] should run.
pub fn reconcile(store: &mut Store, kind: &Kind, obj: &Value) -> Option<u64> {
    match kind.kind {
        "Deployment" => return deployment(store, obj),
        "StatefulSet" => statefulset(store, obj),
        "DaemonSet" => daemonset(store, obj),
        _ => {}
    }
    None
}

/// The deployment controller at a stuck rollout's deadline: `Progressing`
/// turns False with `ProgressDeadlineExceeded`, if `generation` is still
/// the one rolling out.
pub fn deadline_passed(store: &mut Store, ns: &str, name: &str, generation: &Value) {
    let Some(mut d) = store.get(kind("Deployment"), ns, name).cloned() else {
        return;
    };
    if d["metadata"]["generation"] != *generation
        || d["status"]["observedGeneration"] != *generation
    {
        return;
    }
    let mut conditions = d["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten();
    let Some(c) =
        conditions.find(|c| c["type"] == "Progressing" && c["reason"] == "ReplicaSetUpdated")
    else {
        return;
    };
    let message = c["message"]
        .as_str()
        .unwrap_or_default()
        .replace("is progressing.", "has timed out progressing.");
    let at = now();
    *c = json!({
        "type": "Progressing", "status": "False", "lastUpdateTime": at, "lastTransitionTime": at,
        "reason": "ProgressDeadlineExceeded", "message": message,
    });
    store.put(kind("Deployment"), d);
}

fn revision(obj: &Value) -> u64 {
    obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn deployment(store: &mut Store, d: &Value) -> Option<u64> {
    let (ns, name, uid) = (
        meta(d, "namespace").to_owned(),
        meta(d, "name").to_owned(),
        meta(d, "uid").to_owned(),
    );
    let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let rs_name = format!("{name}-{hash}");
    let (rs_kind, pod_kind) = (kind("ReplicaSet"), kind("Pod"));
    let mut events = Vec::new();

    let mut latest = 0;
    for old in store.owned(rs_kind, &ns, &uid) {
        latest = latest.max(revision(&old));
        let was = old["spec"]["replicas"].as_u64().unwrap_or(0);
        if meta(&old, "name") != rs_name && was > 0 {
            for pod in store.owned(pod_kind, &ns, meta(&old, "uid")) {
                store.delete(pod_kind, &ns, meta(&pod, "name"));
            }
            let mut old = old.clone();
            old["spec"]["replicas"] = json!(0);
            old["status"] =
                json!({"replicas": 0, "observedGeneration": old["metadata"]["generation"]});
            let msg = format!(
                "Scaled down replica set {} from {was} to 0",
                meta(&old, "name")
            );
            events.push(("ScalingReplicaSet", msg));
            store.put(rs_kind, old);
        }
    }

    let existing = store.get(rs_kind, &ns, &rs_name).cloned();
    let rev = existing.as_ref().map_or(latest + 1, revision);
    let mut rs = existing.unwrap_or_else(
        || json!({"metadata": {"name": rs_name, "namespace": ns, "generation": 1}}),
    );
    let before = rs["spec"]["replicas"].as_u64().unwrap_or(0);
    let mut pod_template = template.clone();
    pod_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    rs["metadata"]["labels"] = pod_template["metadata"]["labels"].clone();
    rs["metadata"]["annotations"] = json!({
        "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
        "deployment.kubernetes.io/max-replicas": replicas.to_string(),
        "deployment.kubernetes.io/revision": rev.to_string(),
    });
    rs["metadata"]["ownerReferences"] = json!([owner_ref(d)]);
    rs["spec"] = json!({"replicas": replicas, "selector": selector, "template": pod_template});
    let rs = store.put(rs_kind, rs);
    if before != replicas {
        let verb = if replicas > before { "up" } else { "down" };
        events.push((
            "ScalingReplicaSet",
            format!("Scaled {verb} replica set {rs_name} from {before} to {replicas}"),
        ));
    }

    let mut pods = store.owned(pod_kind, &ns, meta(&rs, "uid"));
    while (pods.len() as u64) > replicas {
        if let Some(pod) = pods.pop() {
            store.delete(pod_kind, &ns, meta(&pod, "name"));
        }
    }
    while (pods.len() as u64) < replicas {
        let pod_name = format!("{rs_name}-{}", suffix(5));
        create_pod(
            store,
            &rs,
            &pod_name,
            &rs["spec"]["template"],
            &json!({}),
            never(d),
        );
        pods = store.owned(pod_kind, &ns, meta(&rs, "uid"));
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count() as u64;
    let count = pods.len() as u64;

    let mut rs = rs;
    rs["status"] = without_zeros(json!({
        "replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready, "availableReplicas": ready,
        "observedGeneration": rs["metadata"]["generation"],
    }));
    store.put(rs_kind, rs);

    let at = now();
    let done = ready >= replicas;
    let (available, progressing, message) = if done {
        (
            (
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            ),
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else {
        (
            (
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            ),
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let mut conditions = [
        condition("Available", done, available.0, available.1, &at),
        condition("Progressing", true, progressing, &message, &at),
    ];
    for c in &mut conditions {
        c["lastUpdateTime"] = json!(at);
    }
    let mut d = d.clone();
    d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(rev.to_string());
    d["status"] = without_zeros(json!({
        "observedGeneration": d["metadata"]["generation"],
        "replicas": count,
        "updatedReplicas": count,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas.saturating_sub(ready),
    }));
    d["status"]["conditions"] = json!(conditions);
    let d = store.put(kind("Deployment"), d);
    for (reason, message) in events {
        let e = event(
            &d,
            "Normal",
            reason,
            &message,
            "deployment-controller",
            None,
        );
        store.put(kind("Event"), e);
    }
    (!done).then(|| d["spec"]["progressDeadlineSeconds"].as_u64().unwrap_or(600))
}

fn statefulset(store: &mut Store, s: &Value) {
    let (ns, name, uid) = (
        meta(s, "namespace").to_owned(),
        meta(s, "name").to_owned(),
        meta(s, "uid").to_owned(),
    );
    let replicas = s["spec"]["replicas"].as_u64().unwrap_or(1);
    let revision = format!("{name}-{}", template_hash(&s["spec"]["template"]));
    let pod_kind = kind("Pod");
    for pod in store.owned(pod_kind, &ns, &uid) {
        let ordinal = meta(&pod, "name")
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok());
        let stale = pod["metadata"]["labels"]["controller-revision-hash"] != revision.as_str();
        if stale || ordinal.is_none_or(|o| o >= replicas) {
            store.delete(pod_kind, &ns, meta(&pod, "name"));
        }
    }
    for i in 0..replicas {
        let pod_name = format!("{name}-{i}");
        if store.get(pod_kind, &ns, &pod_name).is_none() {
            let labels = json!({
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": i.to_string(),
            });
            create_pod(
                store,
                s,
                &pod_name,
                &s["spec"]["template"],
                &labels,
                never(s),
            );
        }
    }
    let pods = store.owned(pod_kind, &ns, &uid);
    let ready = pods.iter().filter(|p| is_ready(p)).count() as u64;
    let count = pods.len() as u64;
    let mut s = s.clone();
    let mut status = without_zeros(json!({
        "observedGeneration": s["metadata"]["generation"],
        "readyReplicas": ready,
        "currentReplicas": count,
        "updatedReplicas": count,
    }));
    status["replicas"] = json!(count);
    status["availableReplicas"] = json!(ready);
    status["currentRevision"] = json!(revision);
    status["updateRevision"] = json!(revision);
    status["collisionCount"] = json!(0);
    s["status"] = status;
    store.put(kind("StatefulSet"), s);
}

fn daemonset(store: &mut Store, ds: &Value) {
    let (ns, name, uid) = (
        meta(ds, "namespace").to_owned(),
        meta(ds, "name").to_owned(),
        meta(ds, "uid").to_owned(),
    );
    let template = &ds["spec"]["template"];
    let revision = template_hash(template);
    let pod_kind = kind("Pod");
    for pod in store.owned(pod_kind, &ns, &uid) {
        if pod["metadata"]["labels"]["controller-revision-hash"] != revision.as_str() {
            store.delete(pod_kind, &ns, meta(&pod, "name"));
        }
    }
    // One node, so one pod.
    if store.owned(pod_kind, &ns, &uid).is_empty() {
        let labels = json!({
            "controller-revision-hash": revision,
            "pod-template-generation": ds["metadata"]["generation"].to_string(),
        });
        create_pod(
            store,
            ds,
            &format!("{name}-{}", suffix(5)),
            template,
            &labels,
            never(ds),
        );
    }
    let ready = store
        .owned(pod_kind, &ns, &uid)
        .iter()
        .filter(|p| is_ready(p))
        .count() as u64;
    let mut ds = ds.clone();
    let mut status = without_zeros(json!({
        "observedGeneration": ds["metadata"]["generation"],
        "updatedNumberScheduled": 1,
        "numberAvailable": ready,
        "numberUnavailable": 1 - ready,
    }));
    status["currentNumberScheduled"] = json!(1);
    status["numberMisscheduled"] = json!(0);
    status["desiredNumberScheduled"] = json!(1);
    status["numberReady"] = json!(ready);
    ds["status"] = status;
    store.put(kind("DaemonSet"), ds);
}
