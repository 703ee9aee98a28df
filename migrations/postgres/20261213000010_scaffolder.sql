-- Scaffolder tasks on PostgreSQL (SQLite: migrations/20261127000004_scaffolder.sql).
-- Several replicas share the queue: a task is claimed by exactly one of them
-- (`FOR UPDATE SKIP LOCKED`), whose heartbeat keeps the claim; a claim whose
-- heartbeat has lapsed is taken over by another replica. Secret answers are
-- never stored: only their names.
CREATE TABLE scaffolder_tasks (
    id                TEXT PRIMARY KEY,                 -- UUID
    seq               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, -- arrival order (SQLite's rowid)
    template_ref      TEXT NOT NULL,
    template_json     TEXT NOT NULL,
    template_dir      TEXT,
    values_json       TEXT NOT NULL,
    secret_names      TEXT NOT NULL DEFAULT '[]',
    created_by        TEXT NOT NULL,
    principal_json    TEXT NOT NULL,
    user_ref          TEXT,
    owner_team        TEXT,
    wizard_session    TEXT,
    status            TEXT NOT NULL CHECK (status IN ('open', 'processing', 'completed', 'failed', 'cancelled')),
    claimed_by        TEXT,                             -- the replica's worker id
    resume_from       TEXT,
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    error             TEXT,
    output_json       TEXT,
    time_saved_minutes BIGINT,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    heartbeat_at      BIGINT
);
CREATE INDEX scaffolder_tasks_status ON scaffolder_tasks (status, created_at, seq);
CREATE INDEX scaffolder_tasks_created_by ON scaffolder_tasks (created_by, created_at);

CREATE TABLE scaffolder_steps (
    task_id           TEXT NOT NULL REFERENCES scaffolder_tasks (id) ON DELETE CASCADE,
    step_id           TEXT NOT NULL,
    position          BIGINT NOT NULL,
    name              TEXT NOT NULL,
    action            TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('open', 'processing', 'completed', 'failed', 'skipped', 'cancelled')),
    output_json       TEXT,
    started_at        BIGINT,
    finished_at       BIGINT,
    PRIMARY KEY (task_id, step_id)
);

CREATE TABLE scaffolder_events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id           TEXT NOT NULL REFERENCES scaffolder_tasks (id) ON DELETE CASCADE,
    step_id           TEXT,
    kind              TEXT NOT NULL CHECK (kind IN ('log', 'step', 'completion', 'cancelled', 'recovered')),
    message           TEXT NOT NULL,
    status            TEXT,
    at                BIGINT NOT NULL
);
CREATE INDEX scaffolder_events_task ON scaffolder_events (task_id, id);
