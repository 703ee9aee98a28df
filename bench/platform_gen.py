#!/usr/bin/env python3
"""Fills a migrated Paved database with a large company, for the platform
benchmark (scripts/bench-platform.sh). Paved must not be running.

    platform_gen.py DB NOW TOKENS_OUT [--teams 1000] [--people 20000]
                    [--rounds 50] [--usage 1000000]

NOW is Unix seconds; every row is placed relative to it (nothing depends on
the machine's date). Writes:
  - teams team-00 .. team-999 (the names the delivery benchmark's catalog
    uses as owners), 20 people each (one lead), signed in today;
  - 50 survey rounds, one a week, the latest still open: 40% of people
    answer each (scores, three drivers, some comments with theme words);
  - 1,000,000 gateway usage rows over the last 30 days (five models,
    features, some 429s and 5xx, latencies and costs);
  - each person active on about half of the last 30 days;
  - 3,000 golden-path runs with their wizard funnels over the last 30 days;
  - a personal API token for each of the first 200 people, one header line
    each in TOKENS_OUT (for answering the open survey as real people).
Deterministic (seeded).
"""
import argparse
import hashlib
import json
import random
import sqlite3

MODELS = [  # (provider, model, nanocents per request on average)
    ("openai", "gpt-4o-mini", 40_000_000),
    ("openai", "gpt-4o", 900_000_000),
    ("anthropic", "claude-sonnet-4", 1_200_000_000),
    ("openai", "text-embedding-3-small", 2_000_000),
    ("mistral", "mistral-small", 60_000_000),
]
FEATURES = ["code-review", "support-bot", "search", "summaries", None]
COMMENTS = [
    "The docs are hard to find",
    "Builds are slow on Mondays",
    "Golden paths saved us a week",
    "On-call is stressful, alerts are noisy",
    "Love the catalog search",
    "Secrets setup was confusing",
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("db")
    p.add_argument("now", type=int)
    p.add_argument("tokens_out")
    p.add_argument("--teams", type=int, default=1000)
    p.add_argument("--people", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--usage", type=int, default=1_000_000)
    a = p.parse_args()
    rnd = random.Random(16)
    now = a.now
    db = sqlite3.connect(a.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    cur = db.cursor()

    # Teams and people.
    teams = [f"team-{t:02d}" for t in range(a.teams)]
    cur.executemany(
        "INSERT OR IGNORE INTO teams (name, display_name, created_at) VALUES (?, ?, ?)",
        [(t, t.replace("-", " ").title(), now - 400 * 86400) for t in teams],
    )
    team_id = dict(cur.execute("SELECT name, id FROM teams"))
    base = cur.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()[0] + 1
    people = []  # (user id, team, lead)
    rows = []
    for i in range(a.people):
        uid = base + i
        team = teams[i % a.teams]
        lead = i < a.teams
        people.append((uid, team, lead))
        rows.append((uid, f"bench-person-{i}", f"person{i}@bench.example", f"Person {i}", now - 400 * 86400, now - 3600))
    cur.executemany(
        "INSERT INTO users (id, subject, email, display_name, created_at, last_login_at) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    cur.executemany(
        "INSERT INTO memberships (user_id, team_id, role) VALUES (?, ?, ?)",
        [(uid, team_id[t], "lead" if lead else "member") for uid, t, lead in people],
    )
    with open(a.tokens_out, "w") as out:
        for uid, _, _ in people[a.teams:a.teams + 200]:
            value = "pvd_" + hashlib.sha256(f"bench-token-{uid}".encode()).hexdigest()
            cur.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at, expires_at)"
                " VALUES (?, 'bench', ?, ?, ?, ?)",
                (uid, hashlib.sha256(value.encode()).hexdigest(), value[:12], now - 3600, now + 30 * 86400),
            )
            out.write(f"Authorization: Bearer {value}\n")

    # Survey rounds: one a week, the latest open for another week.
    drivers = json.dumps(["Ease of delivery", "Documentation", "Build speed"])
    themes = json.dumps([
        {"name": "Documentation", "keywords": ["docs", "documentation"]},
        {"name": "Build speed", "keywords": ["slow", "build"]},
        {"name": "On-call", "keywords": ["on-call", "alerts"]},
    ])
    answering = max(1, int(a.people * 0.4))
    for r in range(a.rounds):
        opens = now - (a.rounds - 1 - r) * 7 * 86400 - 86400
        closes = opens + (8 if r == a.rounds - 1 else 6) * 86400
        sid = f"bench-round-{r:03d}"
        cur.execute(
            "INSERT INTO surveys (id, title, question, drivers, comment, opens_at, closes_at, themes, created_by, created_at, keys_erased)"
            " VALUES (?, ?, 'How likely are you to recommend the platform to a colleague?', ?, 1, ?, ?, ?, 'user:pat', ?, ?)",
            (sid, f"Platform pulse, round {r + 1}", drivers, opens, closes, themes, opens, int(closes < now)),
        )
        # The people with tokens answer the open round during the benchmark.
        pool = people if closes < now else people[:a.teams] + people[a.teams + 200:]
        who = rnd.sample(pool, min(answering, len(pool)))
        shift = rnd.randint(-2, 2)
        cur.executemany(
            "INSERT INTO survey_respondents (survey_id, user_id) VALUES (?, ?)",
            [(sid, uid) for uid, _, _ in who],
        )
        answers = []
        for uid, team, lead in who:
            score = min(10, max(0, int(rnd.gauss(7.5, 2)) + shift))
            answers.append((
                sid,
                rnd.getrandbits(128).to_bytes(16, "big").hex(),
                json.dumps([team]),
                "lead" if lead else "developer",
                score,
                json.dumps([rnd.randint(1, 5) for _ in range(3)]),
                rnd.choice(COMMENTS) if rnd.random() < 0.15 else None,
            ))
        cur.executemany(
            "INSERT INTO survey_answers (survey_id, id, teams, persona, score, drivers, comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
            answers,
        )
    db.commit()

    # Gateway usage over 30 days.
    start_ms = (now - 30 * 86400) * 1000
    span_ms = 30 * 86400 * 1000
    batch = []
    for i in range(a.usage):
        provider, model, cost = MODELS[rnd.randrange(len(MODELS))]
        roll = rnd.random()
        status, error = (200, None)
        if roll < 0.01:
            status, error = (429, "rate_limited")
        elif roll < 0.015:
            status, error = (502, "upstream_error")
        tokens_in, tokens_out = rnd.randint(50, 4000), rnd.randint(10, 800)
        batch.append((
            start_ms + rnd.randrange(span_ms),
            teams[int(rnd.paretovariate(1.2)) % a.teams],
            provider,
            model,
            "chat_completion",
            tokens_in if status == 200 else 0,
            tokens_out if status == 200 else 0,
            int(cost * rnd.uniform(0.2, 1.8)) if status == 200 else 0,
            int(rnd.lognormvariate(6.5, 0.6)),
            status,
            error,
            rnd.choice(FEATURES),
        ))
        if len(batch) == 50_000:
            insert_usage(cur, batch)
            batch = []
    insert_usage(cur, batch)
    db.commit()

    # Activity: each person about every other day of the last 30.
    today = now // 86400
    cur.executemany(
        "INSERT OR IGNORE INTO user_activity (user_id, day) VALUES (?, ?)",
        ((uid, today - d) for uid, _, _ in people for d in range(30) if rnd.random() < 0.5),
    )

    # Golden-path runs with their wizard funnels.
    for i in range(3000):
        uid, team, _ = people[rnd.randrange(len(people))]
        started = now - rnd.randrange(30 * 86400)
        session = f"bench-wizard-{i}"
        template = rnd.choice(["template:default/rust-service", "template:default/python-service", "template:default/static-site"])
        cur.execute(
            "INSERT INTO wizard_events (session, template_ref, actor, event, page, at) VALUES (?, ?, ?, 'started', 0, ?)",
            (session, template, f"user:bench-person-{uid}", started),
        )
        if rnd.random() < 0.2:
            continue  # abandoned
        submitted = started + rnd.randint(60, 1800)
        cur.execute(
            "INSERT INTO wizard_events (session, template_ref, actor, event, page, at) VALUES (?, ?, ?, 'submitted', NULL, ?)",
            (session, template, f"user:bench-person-{uid}", submitted),
        )
        ok = rnd.random() < 0.9
        cur.execute(
            "INSERT INTO scaffolder_tasks (id, template_ref, template_json, values_json, created_by, principal_json,"
            " owner_team, wizard_session, status, time_saved_minutes, created_at, started_at, finished_at)"
            " VALUES (?, ?, '{}', '{}', ?, '{}', ?, ?, ?, 120, ?, ?, ?)",
            (f"bench-task-{i}", template, f"user:bench-person-{uid}", team, session,
             "completed" if ok else "failed", submitted, submitted, submitted + rnd.randint(20, 300)),
        )
    db.commit()
    db.close()


def insert_usage(cur, rows):
    cur.executemany(
        "INSERT INTO llm_usage (at, team, provider, model, request_type, input_tokens, output_tokens,"
        " cost_nanocents, latency_ms, status, error_type, feature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


if __name__ == "__main__":
    main()
