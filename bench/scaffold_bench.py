"""Scaffolder load generator: dry runs, sequential full scaffolds and a burst
of concurrent ones against a running Paved. Prints one JSON object.

usage: scaffold_bench.py BASE_URL TOKEN TEMPLATE_REF RUNS CONCURRENT
"""
import json
import statistics
import sys
import threading
import time
import urllib.request

base, token, template, runs, concurrent = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def values(name):
    return {
        "name": name,
        "description": "Benchmark service",
        "owner": "group:default/payments",
        "lifecycle": "experimental",
        "model": "gpt-4o-mini",
        "otel": True,
        "repoUrl": f"git.paved.demo?owner=payments&repo={name}",
    }


def p(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def scaffold(name):
    start = time.perf_counter()
    task = call("POST", "/api/scaffolder/v2/tasks", {"templateRef": template, "values": values(name), "secrets": {"gatewayKey": "gk-bench-0001"}})
    while True:
        state = call("GET", f"/api/scaffolder/v2/tasks/{task['id']}")
        if state["status"] in ("completed", "failed", "cancelled"):
            return time.perf_counter() - start, state["status"]
        time.sleep(0.01)


# Dry runs of the template (warm-up first).
call("POST", "/api/scaffolder/v2/dry-run", {"templateRef": template, "values": values("warmup")})
dry = []
for i in range(runs):
    start = time.perf_counter()
    result = call("POST", "/api/scaffolder/v2/dry-run", {"templateRef": template, "values": values(f"dry-{i}")})
    dry.append(time.perf_counter() - start)
    assert result["error"] is None, result["error"]
files = len(result["directoryContents"])

stamp = int(time.time())
full = []
for i in range(runs):
    seconds, status = scaffold(f"bench-{stamp}-{i}")
    assert status == "completed", status
    full.append(seconds)

outcomes = []
def worker(i):
    outcomes.append(scaffold(f"burst-{stamp}-{i}"))
threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrent)]
start = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
burst = time.perf_counter() - start

ms = lambda s: round(s * 1000, 1)
print(json.dumps({
    "dry_run_files": files,
    "dry_run_ms": {"p50": ms(p(dry, 50)), "p95": ms(p(dry, 95)), "max": ms(max(dry))},
    "scaffold_ms": {"p50": ms(p(full, 50)), "p95": ms(p(full, 95)), "max": ms(max(full))},
    "burst": {"tasks": concurrent, "completed": sum(1 for _, s in outcomes if s == "completed"),
              "wall_ms": ms(burst), "slowest_ms": ms(max(s for s, _ in outcomes))},
}))
