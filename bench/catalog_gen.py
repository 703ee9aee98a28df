#!/usr/bin/env python3
"""Writes a synthetic Backstage catalog for benchmarks.

    catalog_gen.py OUT_DIR [SCALE]

SCALE 1 gives 10,000 Components, 1,000 APIs, 200 Groups and 2,000 Users with
relations (owners, memberships, provided/consumed APIs, dependencies), split
into files of 500 entities under one root Location (OUT_DIR/all.yaml).
SCALE 10 gives ten times as many of each. Deterministic (seeded).
"""
import os
import random
import sys

WORDS = ("payments checkout ledger search index catalogue basket order invoice refund fraud risk "
         "shipping warehouse inventory pricing promotion loyalty account profile identity session "
         "notification email sms analytics report export import billing subscription tax audit").split()


def main():
    out = sys.argv[1]
    scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rnd = random.Random(42)
    n_groups, n_users, n_apis, n_components = 200 * scale, 2000 * scale, 1000 * scale, 10000 * scale
    os.makedirs(out, exist_ok=True)
    docs = []
    for g in range(n_groups):
        parent = f"\n  parent: group-{g // 10:04d}" if g >= 10 else ""
        docs.append(f"""apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: group-{g:04d}
  description: Team {g} working on {rnd.choice(WORDS)} and {rnd.choice(WORDS)}
spec:
  type: team{parent}
  children: []""")
    for u in range(n_users):
        docs.append(f"""apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: user-{u:05d}
spec:
  profile: {{displayName: User {u}, email: user-{u}@example.com}}
  memberOf: [group-{rnd.randrange(n_groups):04d}]""")
    for a in range(n_apis):
        w = rnd.choice(WORDS)
        docs.append(f"""apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: api-{a:05d}
  description: The {w} API number {a}
  tags: [{w}, rest]
spec:
  type: openapi
  lifecycle: {rnd.choice(['production', 'experimental', 'deprecated'])}
  owner: group-{rnd.randrange(n_groups):04d}
  definition: |
    openapi: 3.0.0
    info: {{title: {w} {a}, version: 1.0.0}}
    paths:
      /{w}:
        get: {{summary: List {w}}}""")
    for c in range(n_components):
        w1, w2 = rnd.choice(WORDS), rnd.choice(WORDS)
        provides = f"api-{rnd.randrange(n_apis):05d}"
        consumes = ", ".join(f"api-{rnd.randrange(n_apis):05d}" for _ in range(2))
        depends = f"component:comp-{rnd.randrange(n_components):05d}"
        docs.append(f"""apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: comp-{c:05d}
  title: {w1.title()} {w2} service {c}
  description: Handles {w1} for {w2}; part of the {rnd.choice(WORDS)} journey.
  tags: [{w1}, {rnd.choice(['rust', 'python', 'go', 'java', 'typescript'])}]
spec:
  type: {rnd.choice(['service', 'service', 'website', 'library'])}
  lifecycle: {rnd.choice(['production', 'production', 'experimental'])}
  owner: group-{rnd.randrange(n_groups):04d}
  providesApis: [{provides}]
  consumesApis: [{consumes}]
  dependsOn: [{depends}]""")
    per_file = 500
    targets = []
    for i in range(0, len(docs), per_file):
        name = f"part-{i // per_file:04d}.yaml"
        with open(os.path.join(out, name), "w") as f:
            f.write("\n---\n".join(docs[i:i + per_file]) + "\n")
        targets.append(name)
    with open(os.path.join(out, "all.yaml"), "w") as f:
        f.write("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: synthetic\nspec:\n  targets:\n")
        f.write("".join(f"    - ./{t}\n" for t in targets))
    print(f"{len(docs)} entities in {len(targets)} files under {out}")


if __name__ == "__main__":
    main()
