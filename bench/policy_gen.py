"""Writes N Kubernetes manifest files for `scripts/bench-policy.sh`: workloads
of every kind the shipped policies match (Deployments, StatefulSets,
CronJobs, Pods), each with a Service, one in ten breaking a policy (a raw
OPENAI_API_KEY or a :latest image).

usage: policy_gen.py DIR N
"""
import json
import os
import sys


def emit(value, indent=0):
    """Block-style YAML for dicts, lists and scalars (scalars as JSON, which YAML reads)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.extend(emit(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
    elif isinstance(value, list):
        for item in value:
            sub = emit(item, indent + 1)
            first = sub[0].lstrip()
            lines.append(f"{pad}- {first}")
            lines.extend(sub[1:])
    return lines


def workload(i):
    kinds = [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "CronJob"), ("v1", "Pod")]
    api, kind = kinds[i % 4]
    name = f"svc-{i:05d}"
    ns = f"team-{i % 40:02d}"
    env = [{"name": "LOG_LEVEL", "value": "info"}]
    if i % 20 == 0:
        env.append({"name": "OPENAI_API_KEY", "value": "sk-not-a-real-key"})
    image = "nginx:latest" if i % 20 == 10 else f"registry.example.com/{ns}/{name}:1.{i % 7}.{i % 13}"
    pod = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "containers": [{
            "name": "app",
            "image": image,
            "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "env": env,
        }],
    }
    meta = {"name": name, "namespace": ns, "labels": {"owner": ns, "team": ns, "app.kubernetes.io/name": name}}
    selector = {"app.kubernetes.io/name": name}
    if kind == "Pod":
        spec = pod
    elif kind == "CronJob":
        spec = {"schedule": "*/15 * * * *", "jobTemplate": {"spec": {"template": {"spec": dict(pod, restartPolicy="OnFailure")}}}}
    else:
        spec = {"replicas": 2, "selector": {"matchLabels": selector}, "template": {"metadata": {"labels": selector}, "spec": pod}}
    workload = {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}}
    return "\n".join(emit(workload)) + "\n---\n" + "\n".join(emit(service)) + "\n"


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        with open(os.path.join(out, f"svc-{i:05d}.yaml"), "w") as f:
            f.write(workload(i))


if __name__ == "__main__":
    main()
