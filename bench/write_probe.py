"""Another writer beside an ingestion: takes SQLite's write lock every 20 ms
(`BEGIN IMMEDIATE`, as Paved's own writers do, retrying every millisecond
for at most 5 s as Paved's busy handler does) until STOPFILE exists, and
records how long each write waited. Writes one line for the benchmark's
table to OUT.

usage: write_probe.py DB STOPFILE OUT
"""
import os
import sqlite3
import sys
import time

db, stopfile, out = sys.argv[1:4]
con = sqlite3.connect(db, timeout=0, isolation_level=None)
waits, refused = [], 0
while not os.path.exists(stopfile):
    t0 = time.perf_counter()
    while True:
        try:
            con.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError:
            if time.perf_counter() - t0 >= 5:
                break
            time.sleep(0.001)
    if not con.in_transaction:
        refused += 1
        continue
    con.execute("UPDATE catalog_locations SET last_refresh_at = last_refresh_at WHERE 0")
    con.execute("COMMIT")
    waits.append((time.perf_counter() - t0) * 1000)
    if os.environ.get("PROBE_TRACE"):
        print(f"{time.time():.3f} {waits[-1]:.1f}", file=sys.stderr)
    time.sleep(0.02)
waits.sort()


def pct(p):
    return round(waits[min(len(waits) - 1, int(p * (len(waits) - 1)))], 1) if waits else None


with open(out, "w") as f:
    f.write(f"{len(waits)} writes: p50 {pct(0.5)} ms, p99 {pct(0.99)} ms, "
            f"max {round(waits[-1], 1) if waits else None} ms; {refused} refused after waiting 5 s\n")
