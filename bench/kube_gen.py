#!/usr/bin/env python3
"""Writes a namespace for the Kubernetes benchmark: payments-api with 50 pods
(running, crash-looping, pulling a missing image, OOM-killed and restarted),
nine other services with 50 pods each in the same namespace, and their
events, as kube-stub fixtures (one JSON List)."""
import json
import sys

out = sys.argv[1]
ns = "payments"
T = "2026-03-18T11:00:00Z"


def container_status(i, state):
    base = {"name": "app", "image": "registry.example/payments-api:1.8.2", "imageID": "", "restartCount": 0, "ready": True,
            "started": True, "state": {"running": {"startedAt": T}}}
    if state == "crash":
        base.update(ready=False, started=False, restartCount=7 + i % 5,
                    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container=app"}},
                    lastState={"terminated": {"exitCode": 1, "reason": "Error", "startedAt": T, "finishedAt": T}})
    elif state == "pull":
        base.update(ready=False, started=False, image="registry.example/payments-api:9.9.9",
                    state={"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.example/payments-api:9.9.9\""}})
    elif state == "oom":
        base.update(restartCount=1, lastState={"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": T, "finishedAt": T}})
    return base


def pod(service, i, state="ok"):
    rs = f"{service}-7d9c8b6f5d"
    phase = "Pending" if state == "pull" else "Running"
    ready = state in ("ok", "oom")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{rs}-{i:05d}", "namespace": ns, "uid": f"{service}-{i}",
                     "labels": {"app.kubernetes.io/name": service, "backstage.io/kubernetes-id": service, "pod-template-hash": "7d9c8b6f5d"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": f"{rs}-uid", "controller": True}],
                     "creationTimestamp": T},
        "spec": {"nodeName": f"node-{i % 7}", "containers": [{"name": "app", "image": "registry.example/payments-api:1.8.2",
                  "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "64Mi"}},
                  "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5}}]},
        "status": {"phase": phase, "startTime": T,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": T}],
                   "containerStatuses": [container_status(i, state)]},
    }


def deployment(service, replicas, ready):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": service, "namespace": ns, "generation": 3,
                         "labels": {"app.kubernetes.io/name": service, "backstage.io/kubernetes-id": service}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
                     "template": {"metadata": {"labels": {"app.kubernetes.io/name": service, "backstage.io/kubernetes-id": service}},
                                  "spec": {"containers": [{"name": "app", "image": f"registry.example/{service}:1.0.0"}]}}},
            "status": {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
                       "conditions": [{"type": "Available", "status": "True" if ready == replicas else "False", "reason": "MinimumReplicasAvailable", "lastTransitionTime": T}]}}


items = []
states = ["ok"] * 40 + ["crash"] * 5 + ["pull"] * 3 + ["oom"] * 2
for i, s in enumerate(states):
    items.append(pod("payments-api", i, s))
items.append(deployment("payments-api", 50, 42))
for k in range(9):
    svc = f"service-{k}"
    items.append(deployment(svc, 50, 50))
    for i in range(50):
        items.append(pod(svc, i))
for i in range(200):
    target = f"payments-api-7d9c8b6f5d-{i % 50:05d}" if i % 2 == 0 else f"service-{i % 9}-7d9c8b6f5d-{i % 50:05d}"
    items.append({"apiVersion": "v1", "kind": "Event",
                  "metadata": {"name": f"{target}.{i}", "namespace": ns},
                  "involvedObject": {"kind": "Pod", "name": target, "namespace": ns},
                  "reason": "BackOff", "message": "Back-off restarting failed container app", "type": "Warning",
                  "count": 1 + i % 9, "firstTimestamp": T, "lastTimestamp": T})
with open(out, "w") as f:
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
print(f"{len(items)} objects")
