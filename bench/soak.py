"""Soak test driver (scripts/bench-soak.sh starts everything it talks to).

Mixed load against a running Paved for MINUTES minutes: catalog lists and
searches (API), entity pages (signed in), gateway chat with a budget, full
scaffolds and secret writes, each at its own steady rate. Every SAMPLE seconds
it records Paved's resident set, open files and the SQLite WAL's size; every
minute the p99 of each operation. Half-way through it kills Paved with
SIGKILL and starts it again with START (a script that writes the new pid to
PIDFILE). Afterwards it checks what the crash may not break: budget holds,
scaffolder tasks and catalog locations. Writes RESULTS.json and a timeline
chart CHART.svg.

usage: soak.py URL PIDFILE START DB ADMIN_TOKEN LEAD_TOKEN GATEWAY_KEY COOKIE MINUTES RESULTS.json CHART.svg
"""
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

(url, pidfile, start_cmd, db, admin_token, lead_token, gw_key, cookie,
 minutes, results_path, chart_path) = sys.argv[1:12]
minutes = float(minutes)
duration = minutes * 60
kill_at = duration / 2
SAMPLE = 5
WARMUP_MIN = 3  # minutes after each start left out of the flatness figures
host = urllib.parse.urlparse(url)

t0 = time.monotonic()
stop = threading.Event()
# Set while Paved is down: requests failing then are counted apart.
restarting = threading.Event()
lock = threading.Lock()
# op -> minute -> [latencies ms]; op -> counters
latencies = {}
counts = {}
samples = []
events = []


def now_min():
    return int((time.monotonic() - t0) // 60)


def record(op, ms, ok, during_restart):
    with lock:
        c = counts.setdefault(op, {"ok": 0, "failed": 0, "failed_during_restart": 0})
        if ok:
            c["ok"] += 1
            latencies.setdefault(op, {}).setdefault(now_min(), []).append(ms)
        elif during_restart:
            c["failed_during_restart"] += 1
        else:
            c["failed"] += 1
            if c["failed"] <= 5:
                events.append({"t": round(time.monotonic() - t0, 1), "event": f"{op} failed"})


class Client:
    def __init__(self):
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                return response.status, data
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise RuntimeError("unreachable")


def api_headers(token):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


words = ["payments", "search", "checkout", "ledger", "billing", "orders", "users", "gateway", "api", "web"]
orders = ["metadata.name", "metadata.title", "spec.type", "spec.owner", "kind"]


def catalog_list(client, i):
    params = [("filter", "kind=component"), ("limit", "50"),
              ("orderField", f"{random.choice(orders)},{random.choice(['asc', 'desc'])}"),
              ("offset", str(random.randrange(0, 2000, 50)))]
    if i % 3 == 0:
        params[0] = ("filter", f"kind=component,relations.ownedBy=group:default/group-{random.randrange(200):04d}")
    return client.request("GET", "/api/catalog/entities/by-query?" + urllib.parse.urlencode(params),
                          headers=api_headers(admin_token))


def catalog_search(client, i):
    params = [("filter", "kind=component"), ("fullTextFilterTerm", random.choice(words)),
              ("fullTextFilterFields", "metadata.name,metadata.title"), ("limit", "50")]
    return client.request("GET", "/api/catalog/entities/by-query?" + urllib.parse.urlencode(params),
                          headers=api_headers(admin_token))


def entity_page(client, i):
    return client.request("GET", f"/catalog/component/default/comp-{random.randrange(10000):05d}",
                          headers={"Cookie": f"paved_session={cookie}"})


run_tag = f"{int(time.time())}"


def gateway_chat(client, i):
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 32,
                       "messages": [{"role": "user", "content": f"Soak request {i}: say hello."}]})
    headers = {"Authorization": f"Bearer {gw_key}", "Content-Type": "application/json",
               "Idempotency-Key": f"soak-{run_tag}-{i}"}
    status, data = client.request("POST", "/llm/v1/chat/completions", body=body, headers=headers)
    if status == 200:
        with lock:
            counts.setdefault("gateway_answers", set()).add(i)
    return status, data


scaffold_ids = []


def scaffold(client, i):
    values = {"name": f"soak-{run_tag}-{i}", "description": "Soak test service",
              "owner": "group:default/payments", "lifecycle": "experimental", "model": "gpt-4o-mini",
              "otel": True, "repoUrl": f"git.paved.demo?owner=payments&repo=soak-{run_tag}-{i}"}
    status, data = client.request("POST", "/api/scaffolder/v2/tasks",
                                  body=json.dumps({"templateRef": "template:default/rust-axum-service",
                                                   "values": values,
                                                   "secrets": {"gatewayKey": "gk-soak-0001"}}),
                                  headers=api_headers(lead_token))
    if status in (200, 201):
        with lock:
            scaffold_ids.append(json.loads(data)["id"])
    return status, data


def secret_write(client, i):
    body = json.dumps({"data": {"DATABASE_URL": f"postgres://soak:not-a-real-password-{i}@db/soak",
                                "DATABASE_USER": "soak"}})
    return client.request("PUT", f"/api/secrets/v1/payments/payments-api/soak-{i % 20}", body=body,
                          headers=api_headers(lead_token))


# (operation, function, requests per second, threads)
OPERATIONS = [
    ("catalog_list", catalog_list, 12, 2),
    ("catalog_search", catalog_search, 6, 1),
    ("entity_page", entity_page, 6, 1),
    ("gateway_chat", gateway_chat, 20, 2),
    ("scaffold", scaffold, 1 / 15, 1),
    ("secret_write", secret_write, 1, 1),
]
sequence = {name: 0 for name, *_ in OPERATIONS}


def worker(name, fn, rate, threads):
    client = Client()
    interval = threads / rate
    next_at = time.monotonic() + random.random() * interval
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        next_at += interval
        if next_at < time.monotonic() - 5 * interval:
            next_at = time.monotonic()  # fell far behind (Paved was down): do not burst
        with lock:
            sequence[name] += 1
            i = sequence[name]
        during = restarting.is_set()
        started = time.perf_counter()
        try:
            status, _ = fn(client, i)
            ok = 200 <= status < 300
        except Exception:
            ok = False
        ms = (time.perf_counter() - started) * 1000
        record(name, ms, ok, during or restarting.is_set())


def pid():
    with open(pidfile) as f:
        return int(f.read().strip())


def sample():
    p = pid()
    try:
        with open(f"/proc/{p}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
        fds = len(os.listdir(f"/proc/{p}/fd"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return
    wal = os.path.getsize(db + "-wal") / 2**20 if os.path.exists(db + "-wal") else 0.0
    samples.append({"t": round(time.monotonic() - t0, 1), "rss_mb": round(rss, 1),
                    "open_files": fds, "wal_mb": round(wal, 2)})


def wait_ready(timeout=60):
    deadline = time.monotonic() + timeout
    client = Client()
    while time.monotonic() < deadline:
        try:
            status, _ = client.request("GET", "/readyz")
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


threads = []
for name, fn, rate, n in OPERATIONS:
    for _ in range(n):
        t = threading.Thread(target=worker, args=(name, fn, rate, n), daemon=True)
        t.start()
        threads.append(t)

killed = False
restart_s = None
while time.monotonic() - t0 < duration:
    sample()
    if not killed and time.monotonic() - t0 >= kill_at:
        killed = True
        victim = pid()
        restarting.set()
        events.append({"t": round(time.monotonic() - t0, 1), "event": f"kill -9 {victim}"})
        os.kill(victim, signal.SIGKILL)
        while os.path.exists(f"/proc/{victim}") and open(f"/proc/{victim}/stat").read().split()[2] != "Z":
            time.sleep(0.01)
        began = time.monotonic()
        subprocess.Popen(["bash", start_cmd], start_new_session=True)
        if not wait_ready():
            print("Paved did not come back after kill -9", file=sys.stderr)
            sys.exit(1)
        restart_s = round(time.monotonic() - began, 2)
        events.append({"t": round(time.monotonic() - t0, 1), "event": f"ready again after {restart_s} s"})
        restarting.clear()
    time.sleep(SAMPLE)
stop.set()
for t in threads:
    t.join(timeout=60)

# --- After the run: what the crash must not have broken --------------------
checks = {}
admin = Client()


def get_json(path, token=admin_token):
    status, data = admin.request("GET", path, headers=api_headers(token))
    return status, (json.loads(data) if data else None)


# Holds of requests in flight at the kill are released by their TTL; wait for
# every hold to be settled or expired, then compare the ledger with the usage
# records it was rebuilt from.
deadline = time.monotonic() + 240
budget = None
while time.monotonic() < deadline:
    status, budget = get_json("/api/budgets/v1/teams/payments", lead_token)
    if status == 200 and budget.get("reserved_nanocents") == 0:
        break
    time.sleep(2)
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
usage_sum = con.execute(
    "SELECT COALESCE(SUM(cost_nanocents), 0) FROM llm_usage WHERE team = 'payments' AND at >= ?",
    (int(time.time() * 1000) - 3600 * 1000 * 24 * 31,)).fetchone()[0]
period_usage = None
if budget and budget.get("period_start"):
    # period_start is RFC 3339; let SQLite's clock-free parser turn it into ms.
    start_ms = con.execute("SELECT CAST(unixepoch(?) AS INTEGER) * 1000", (budget["period_start"],)).fetchone()[0]
    period_usage = con.execute(
        "SELECT COALESCE(SUM(cost_nanocents), 0) FROM llm_usage WHERE team = 'payments' AND at >= ?",
        (start_ms,)).fetchone()[0]
states = dict(con.execute("SELECT state, COUNT(*) FROM llm_reservations GROUP BY state").fetchall())
# (The demo's seeded history shares one made-up reservation id: only real
# reservations count.)
double = con.execute(
    "SELECT COUNT(*) FROM (SELECT reservation_id FROM llm_usage WHERE reservation_id IN "
    "(SELECT id FROM llm_reservations) GROUP BY reservation_id HAVING COUNT(*) > 1)").fetchone()[0]
double_rows = [dict(zip(("reservation", "status", "cost_nanocents", "idempotency_key", "at", "error_type"), r)) for r in con.execute(
    "SELECT reservation_id, status, cost_nanocents, idempotency_key, at, error_type FROM llm_usage WHERE reservation_id IN "
    "(SELECT reservation_id FROM llm_usage WHERE reservation_id IN (SELECT id FROM llm_reservations) "
    "GROUP BY reservation_id HAVING COUNT(*) > 1) "
    "ORDER BY reservation_id, id").fetchall()]
settled_without_usage = con.execute(
    "SELECT COUNT(*) FROM llm_reservations r WHERE r.state = 'settled' AND NOT EXISTS "
    "(SELECT 1 FROM llm_usage u WHERE u.reservation_id = r.id)").fetchone()[0]
answered = len(counts.get("gateway_answers", set()))
usage_ok = con.execute(
    "SELECT COUNT(*) FROM llm_usage WHERE team = 'payments' AND status = 200 AND idempotency_key LIKE ?",
    (f"soak-{run_tag}-%",)).fetchone()[0]
checks["ledger"] = {
    "spent_nanocents (ledger)": budget and budget.get("spent_nanocents"),
    "reserved_nanocents (ledger)": budget and budget.get("reserved_nanocents"),
    "sum of usage records this period (nanocents)": period_usage,
    "reservations by state": states,
    "reservations with more than one usage record": double,
    "their usage records": double_rows[:10],
    "settled reservations without a usage record": settled_without_usage,
    "gateway answers the client received (200)": answered,
    "usage records of answered soak requests": usage_ok,
    "pass": bool(budget) and budget.get("reserved_nanocents") == 0
    and budget.get("spent_nanocents") == period_usage and double == 0 and settled_without_usage == 0,
}
# Scaffolder: every task finished (completed or failed with its log); none stuck.
time.sleep(5)
task_states = dict(con.execute("SELECT status, COUNT(*) FROM scaffolder_tasks GROUP BY status").fetchall())
failed_without_log = con.execute(
    "SELECT COUNT(*) FROM scaffolder_tasks t WHERE t.status = 'failed' AND NOT EXISTS "
    "(SELECT 1 FROM scaffolder_events e WHERE e.task_id = t.id)").fetchone()[0]
checks["scaffolder"] = {
    "tasks started": len(scaffold_ids),
    "tasks by status": task_states,
    "failed tasks without a log": failed_without_log,
    "pass": task_states.get("open", 0) == 0 and task_states.get("processing", 0) == 0
    and failed_without_log == 0,
}
# Catalog: every location's recorded count matches the entities it provides.
half = con.execute(
    "SELECT COUNT(*) FROM catalog_locations l WHERE l.entity_count <> "
    "(SELECT COUNT(*) FROM catalog_entities e WHERE e.location_id = l.id AND e.orphan = 0)").fetchone()[0]
entities = con.execute("SELECT COUNT(*) FROM catalog_entities").fetchone()[0]
checks["catalog"] = {"entities": entities, "locations whose count disagrees with their entities": half,
                     "pass": half == 0}
con.close()


# --- Per-minute figures -------------------------------------------------------
def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))] if ordered else None


total_min = int(duration // 60)
kill_min = int(kill_at // 60)
per_minute = []
for m in range(total_min):
    row = {"minute": m}
    window = [s for s in samples if m * 60 <= s["t"] < (m + 1) * 60]
    if window:
        row["rss_mb"] = max(s["rss_mb"] for s in window)
        row["open_files"] = max(s["open_files"] for s in window)
        row["wal_mb"] = max(s["wal_mb"] for s in window)
    for name, *_ in OPERATIONS:
        row[f"{name}_p99_ms"] = p99(latencies.get(name, {}).get(m, []))
    per_minute.append(row)


def steady(rows):
    """Minutes after the warm-up that follows each start (and not the restart minute)."""
    return [r for r in rows if WARMUP_MIN <= r["minute"] < kill_min or r["minute"] >= kill_min + WARMUP_MIN]


def spread(key, rows):
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return None
    lo, hi = min(values), max(values)
    mid = sorted(values)[len(values) // 2]
    return {"min": round(lo, 2), "median": round(mid, 2), "max": round(hi, 2),
            "max_over_median_pct": round((hi - mid) / mid * 100, 1) if mid else None}


flat = {key: spread(key, steady(per_minute)) for key in
        ["rss_mb", "open_files", "wal_mb"] + [f"{name}_p99_ms" for name, *_ in OPERATIONS]}
result = {
    "minutes": minutes,
    "kill_at_s": kill_at,
    "restart_s": restart_s,
    "requests": {k: v for k, v in counts.items() if k != "gateway_answers"},
    "checks": checks,
    "steady_state": flat,
    "per_minute": per_minute,
    "events": events,
}
with open(results_path, "w") as f:
    json.dump(result, f, indent=1)


# --- Chart ----------------------------------------------------------------
def svg_chart(rows):
    W, H, L, R, T, B = 960, 560, 70, 170, 40, 50
    panels = [("Resident set (MB)", ["rss_mb"], ["#2563eb"]),
              ("p99 per operation (ms)", [f"{n}_p99_ms" for n, *_ in OPERATIONS],
               ["#2563eb", "#16a34a", "#9333ea", "#dc2626", "#ea580c", "#0891b2"]),
              ("WAL (MB) and open files", ["wal_mb", "open_files"], ["#ca8a04", "#475569"])]
    ph = (H - T - B) / len(panels)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="22" font-size="15" font-weight="bold">Paved soak: {minutes:g} minutes of mixed load, kill -9 at minute {kill_at / 60:g}</text>']
    n = max(1, len(rows) - 1)
    x = lambda m: L + (W - L - R) * m / n
    for pi, (title, keys, colours) in enumerate(panels):
        top = T + pi * ph + 10
        height = ph - 30
        values = [r[k] for r in rows for k in keys if r.get(k) is not None]
        vmax = max(values) * 1.15 if values else 1
        out.append(f'<text x="{L}" y="{top - 2}" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{L}" y1="{top + height}" x2="{W - R}" y2="{top + height}" stroke="#94a3b8"/>')
        out.append(f'<line x1="{L}" y1="{top}" x2="{L}" y2="{top + height}" stroke="#94a3b8"/>')
        for frac in (0, 0.5, 1):
            y = top + height - height * frac
            out.append(f'<text x="{L - 6}" y="{y + 4}" text-anchor="end" fill="#475569">{vmax * frac:.0f}</text>')
        kx = x(kill_at / 60)
        out.append(f'<line x1="{kx}" y1="{top}" x2="{kx}" y2="{top + height}" stroke="#dc2626" stroke-dasharray="4 3"/>')
        for k, colour in zip(keys, colours):
            pts = [(x(r["minute"]), top + height - height * r[k] / vmax) for r in rows if r.get(k) is not None]
            if pts:
                path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for li, (k, colour) in enumerate(zip(keys, colours)):
            ly = top + 10 + li * 16
            label = k.replace("_p99_ms", "").replace("_", " ")
            out.append(f'<rect x="{W - R + 12}" y="{ly - 9}" width="12" height="3" fill="{colour}"/>')
            out.append(f'<text x="{W - R + 30}" y="{ly - 4}">{label}</text>')
    out.append(f'<text x="{(W - R + L) / 2}" y="{H - 12}" text-anchor="middle" fill="#475569">minute of the run (dashed: kill -9 and restart)</text>')
    out.append("</svg>")
    return "\n".join(out)


with open(chart_path, "w") as f:
    f.write(svg_chart(per_minute))
print(json.dumps({k: result[k] for k in ("minutes", "restart_s", "requests", "checks", "steady_state")}, indent=1))
ok = all(c["pass"] for c in checks.values())
sys.exit(0 if ok else 1)
