-- Delivery outcomes: where events come from, every raw delivery (kept for
-- re-computation), and what they told: commits with their parents, merges,
-- deployments and incidents. Attribution and the five keys are computed
-- from these when asked, so a mapping change or a late event re-computes.

CREATE TABLE outcome_sources (
    id            TEXT PRIMARY KEY,                  -- UUID, or env-github / env-gitlab
    kind          TEXT NOT NULL CHECK (kind IN ('github', 'gitlab', 'devlake', 'generic')),
    name          TEXT NOT NULL UNIQUE,
    -- GitHub signs with the shared secret itself, so it is kept to verify;
    -- bearer tokens (GitLab, DevLake, generic) only as a SHA-256 hash.
    secret        TEXT,
    token_hash    TEXT,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    rotated_at    INTEGER,
    last_event_at INTEGER,
    event_count   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outcome_events (
    source_id     TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    event         TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    facts         INTEGER NOT NULL,                  -- how many facts it told
    PRIMARY KEY (source_id, delivery_id)
) WITHOUT ROWID;
CREATE INDEX outcome_events_received ON outcome_events(received_at);

CREATE TABLE outcome_commits (
    repo          TEXT NOT NULL,                     -- host/owner/name, lowercase
    sha           TEXT NOT NULL,
    committed_at  INTEGER,
    files         TEXT,                              -- JSON list of paths, when known
    PRIMARY KEY (repo, sha)
) WITHOUT ROWID;

CREATE TABLE outcome_parents (
    repo          TEXT NOT NULL,
    sha           TEXT NOT NULL,
    parent        TEXT NOT NULL,
    PRIMARY KEY (repo, sha, parent)
) WITHOUT ROWID;

CREATE TABLE outcome_merges (
    repo          TEXT NOT NULL,
    merge_sha     TEXT NOT NULL,
    head_sha      TEXT,
    number        TEXT NOT NULL,
    opened_at     INTEGER,
    merged_at     INTEGER NOT NULL,
    PRIMARY KEY (repo, merge_sha)
) WITHOUT ROWID;

CREATE TABLE outcome_deployments (
    id            INTEGER PRIMARY KEY,
    source_id     TEXT NOT NULL,
    key           TEXT NOT NULL,
    repo          TEXT,
    component_ref TEXT,                              -- named explicitly by the event
    environment   TEXT NOT NULL,
    sha           TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failure')),
    started_at    INTEGER,
    finished_at   INTEGER NOT NULL,
    rework        TEXT,                              -- why it counts as rework, when the event says
    fixes         TEXT,                              -- the incident it fixes
    title         TEXT,
    UNIQUE (source_id, key)
);
CREATE INDEX outcome_deployments_repo ON outcome_deployments(repo, finished_at);
CREATE INDEX outcome_deployments_component ON outcome_deployments(component_ref, finished_at);

CREATE TABLE outcome_incidents (
    id               INTEGER PRIMARY KEY,
    source_id        TEXT NOT NULL,
    key              TEXT NOT NULL,
    repo             TEXT,
    component_ref    TEXT,
    title            TEXT NOT NULL,
    url              TEXT,
    created_at       INTEGER NOT NULL,
    resolved_at      INTEGER,
    cause_sha        TEXT,
    cause_deployment TEXT,
    withdrawn        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, key)
);
CREATE INDEX outcome_incidents_repo ON outcome_incidents(repo, created_at);
CREATE INDEX outcome_incidents_component ON outcome_incidents(component_ref, created_at);
