-- The scaffolder: durable tasks (claimed by workers, resumed or failed after
-- a restart, never lost), per-step state and outputs, the event log that
-- streams to the browser, wizard funnel events for the platform metrics, and
-- in-portal notifications. Secret answers are never stored: only their names.

CREATE TABLE scaffolder_tasks (
    id                TEXT PRIMARY KEY,                 -- UUID
    template_ref      TEXT NOT NULL,                    -- template:default/name
    template_json     TEXT NOT NULL,                    -- the Template entity when the task was created
    template_dir      TEXT,                             -- its folder, for ./skeleton
    values_json       TEXT NOT NULL,                    -- the answers, secrets excluded
    secret_names      TEXT NOT NULL DEFAULT '[]',       -- names of the secret answers given
    created_by        TEXT NOT NULL,                    -- audit actor (user:dana)
    principal_json    TEXT NOT NULL,                    -- who it runs as (teams and roles, no credentials)
    user_ref          TEXT,                             -- user:default/dana
    owner_team        TEXT,                             -- the team it runs for
    wizard_session    TEXT,                             -- links the task to its wizard funnel
    status            TEXT NOT NULL CHECK (status IN ('open', 'processing', 'completed', 'failed', 'cancelled')),
    claimed_by        TEXT,                             -- the worker process that runs it
    resume_from       TEXT,                             -- the step a retry starts at
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    output_json       TEXT,
    time_saved_minutes INTEGER,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    heartbeat_at      INTEGER
);
CREATE INDEX scaffolder_tasks_status ON scaffolder_tasks(status, created_at);
CREATE INDEX scaffolder_tasks_created_by ON scaffolder_tasks(created_by, created_at);

CREATE TABLE scaffolder_steps (
    task_id           TEXT NOT NULL REFERENCES scaffolder_tasks(id) ON DELETE CASCADE,
    step_id           TEXT NOT NULL,
    position          INTEGER NOT NULL,
    name              TEXT NOT NULL,
    action            TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('open', 'processing', 'completed', 'failed', 'skipped', 'cancelled')),
    output_json       TEXT,
    started_at        INTEGER,
    finished_at       INTEGER,
    PRIMARY KEY (task_id, step_id)
);

CREATE TABLE scaffolder_events (
    id                INTEGER PRIMARY KEY,
    task_id           TEXT NOT NULL REFERENCES scaffolder_tasks(id) ON DELETE CASCADE,
    step_id           TEXT,
    kind              TEXT NOT NULL CHECK (kind IN ('log', 'step', 'completion', 'cancelled', 'recovered')),
    message           TEXT NOT NULL,
    status            TEXT,
    at                INTEGER NOT NULL
);
CREATE INDEX scaffolder_events_task ON scaffolder_events(task_id, id);

-- Wizard funnel: started, each page reached, review, completed, abandoned.
CREATE TABLE wizard_events (
    id                INTEGER PRIMARY KEY,
    session           TEXT NOT NULL,
    template_ref      TEXT NOT NULL,
    actor             TEXT NOT NULL,
    event             TEXT NOT NULL CHECK (event IN ('started', 'page', 'review', 'dry_run', 'submitted', 'abandoned')),
    page              INTEGER,
    at                INTEGER NOT NULL
);
CREATE INDEX wizard_events_template ON wizard_events(template_ref, at);
CREATE INDEX wizard_events_session ON wizard_events(session);

CREATE TABLE notifications (
    id                INTEGER PRIMARY KEY,
    recipient         TEXT NOT NULL,                    -- user:default/dana or group:default/payments
    title             TEXT NOT NULL,
    description       TEXT,
    link              TEXT,
    severity          TEXT NOT NULL DEFAULT 'normal' CHECK (severity IN ('low', 'normal', 'high', 'critical')),
    origin            TEXT,                             -- e.g. the task id
    created_at        INTEGER NOT NULL,
    read_at           INTEGER
);
CREATE INDEX notifications_recipient ON notifications(recipient, created_at);
