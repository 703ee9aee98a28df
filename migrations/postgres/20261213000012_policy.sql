-- Policy records on PostgreSQL (SQLite: migrations/20261208000001_policy.sql).

-- Each violation (or evaluation error) from the scaffolder, CI reports, the
-- admission webhook or an audit. Bounded: the newest
-- PAVED_POLICY_VIOLATIONS_KEPT rows are kept (ids only grow).
CREATE TABLE policy_violations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    point       TEXT NOT NULL CHECK (point IN ('scaffolder', 'ci', 'admission', 'audit')),
    action      TEXT NOT NULL CHECK (action IN ('deny', 'warn', 'dryrun', 'error', 'excepted')),
    policy      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    object      TEXT NOT NULL,
    namespace   TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    team        TEXT
);
CREATE INDEX policy_violations_policy ON policy_violations (policy, id);
CREATE INDEX policy_violations_point ON policy_violations (point, id);
CREATE INDEX policy_violations_at ON policy_violations (at);

-- A namespaced exception to one constraint, owned by a team, with a reason
-- and an expiry: expired or revoked exceptions stop applying at once.
CREATE TABLE policy_exceptions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy      TEXT NOT NULL CHECK (length(policy) BETWEEN 1 AND 253),
    namespace   TEXT NOT NULL CHECK (length(namespace) BETWEEN 1 AND 63),
    object_name TEXT NOT NULL DEFAULT '*' CHECK (length(object_name) BETWEEN 1 AND 253),
    team        TEXT NOT NULL REFERENCES teams (name),
    reason      TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    expires_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_by  TEXT,
    revoked_at  BIGINT
);
CREATE INDEX policy_exceptions_active ON policy_exceptions (policy, namespace) WHERE revoked_at IS NULL;

-- Evaluations per policy and hour, with those that failed to evaluate.
CREATE TABLE policy_evaluations_hourly (
    hour        BIGINT NOT NULL,   -- unix seconds / 3600
    policy      TEXT NOT NULL,
    evaluations BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    PRIMARY KEY (hour, policy)
);
