-- Policy as code: violations from every enforcement point, and exceptions.

-- Each violation (or evaluation error) found by the scaffolder, CI reports,
-- the admission webhook or an audit. Bounded: the newest
-- PAVED_POLICY_VIOLATIONS_KEPT rows are kept (ids only grow).
CREATE TABLE policy_violations (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    point       TEXT NOT NULL CHECK (point IN ('scaffolder', 'ci', 'admission', 'audit')),
    action      TEXT NOT NULL CHECK (action IN ('deny', 'warn', 'dryrun', 'error', 'excepted')),
    policy      TEXT NOT NULL,             -- constraint name, or namespace.rule for plain Rego
    kind        TEXT NOT NULL,             -- constraint kind, or Rego
    object      TEXT NOT NULL,             -- Kind/namespace/name
    namespace   TEXT NOT NULL DEFAULT '',  -- the object's Kubernetes namespace
    message     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',  -- file:line, task, or admission request uid
    team        TEXT                       -- the team whose golden path or report it was
);
CREATE INDEX policy_violations_policy ON policy_violations (policy, id);
CREATE INDEX policy_violations_point ON policy_violations (point, id);

-- A namespaced exception to one constraint, owned by a team, with a reason
-- and an expiry: expired or revoked exceptions stop applying at once.
CREATE TABLE policy_exceptions (
    id          INTEGER PRIMARY KEY,
    policy      TEXT NOT NULL CHECK (length(policy) BETWEEN 1 AND 253),
    namespace   TEXT NOT NULL CHECK (length(namespace) BETWEEN 1 AND 63),
    object_name TEXT NOT NULL DEFAULT '*' CHECK (length(object_name) BETWEEN 1 AND 253),
    team        TEXT NOT NULL REFERENCES teams(name),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    expires_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_by  TEXT,
    revoked_at  INTEGER
);
CREATE INDEX policy_exceptions_active ON policy_exceptions (policy, namespace) WHERE revoked_at IS NULL;

-- Evaluations per policy and hour, with those that failed to evaluate: the
-- policies' SLO on the capabilities page (errors are never a silent pass).
CREATE TABLE policy_evaluations_hourly (
    hour        INTEGER NOT NULL,   -- unix seconds / 3600
    policy      TEXT NOT NULL,
    evaluations INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    PRIMARY KEY (hour, policy)
) WITHOUT ROWID;
