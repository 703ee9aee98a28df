-- Team LLM budgets and the platform LLM gateway: budgets (versioned), the
-- price table, gateway keys (hashed), the two-phase ledger's reservations
-- (which double as idempotency records) and one usage record per request.
-- Money is integer: cents for limits, nanocents (1e-9 cent) in the ledger,
-- millicents per million tokens for prices.

CREATE TABLE llm_budgets (
    team                TEXT NOT NULL,
    workspace_id        TEXT NOT NULL DEFAULT '',   -- '' is the team-wide budget
    period              TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    limit_cents         INTEGER NOT NULL CHECK (limit_cents >= 0),
    soft_alert_percent  INTEGER NOT NULL CHECK (soft_alert_percent BETWEEN 1 AND 100),
    on_limit            TEXT NOT NULL CHECK (on_limit IN ('block', 'alert')),
    allowed_models      TEXT NOT NULL DEFAULT '[]', -- JSON array; empty allows every priced model
    rpm_limit           INTEGER CHECK (rpm_limit > 0),
    tpm_limit           INTEGER CHECK (tpm_limit > 0),
    version             INTEGER NOT NULL,
    updated_by          TEXT NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (team, workspace_id)
);

-- Every change to a budget: who, when, before and after.
CREATE TABLE llm_budget_versions (
    id            INTEGER PRIMARY KEY,
    team          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    changed_by    TEXT NOT NULL,
    changed_at    INTEGER NOT NULL,
    before_json   TEXT,
    after_json    TEXT NOT NULL,
    UNIQUE (team, workspace_id, version)
);

-- Soft-threshold alerts: one per budget and period (the webhook fires once).
CREATE TABLE llm_budget_alerts (
    team          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    period_start  INTEGER NOT NULL,
    spent_cents   INTEGER NOT NULL,
    fired_at      INTEGER NOT NULL,
    webhook_status TEXT,
    PRIMARY KEY (team, workspace_id, period_start)
);

CREATE TABLE llm_prices (
    provider                    TEXT NOT NULL,
    model                       TEXT NOT NULL,
    input_millicents_per_mtok   INTEGER NOT NULL CHECK (input_millicents_per_mtok >= 0),
    output_millicents_per_mtok  INTEGER NOT NULL CHECK (output_millicents_per_mtok >= 0),
    updated_by                  TEXT NOT NULL,
    updated_at                  INTEGER NOT NULL,
    PRIMARY KEY (provider, model)
);

CREATE TABLE llm_gateway_keys (
    id            INTEGER PRIMARY KEY,
    team          TEXT NOT NULL,
    workspace_id  TEXT,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    key_hash      TEXT NOT NULL UNIQUE,
    key_prefix    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX llm_gateway_keys_team ON llm_gateway_keys(team);

-- The two-phase ledger. A reservation holds the worst-case cost until it is
-- settled to the actual cost, voided, or expires; with an idempotency key it
-- also stores the first response so a retry is replayed and billed once.
CREATE TABLE llm_reservations (
    id                TEXT PRIMARY KEY,
    team              TEXT NOT NULL,
    workspace_id      TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL,
    amount_nanocents  INTEGER NOT NULL CHECK (amount_nanocents >= 0),
    state             TEXT NOT NULL CHECK (state IN ('held', 'settled', 'voided', 'expired')),
    idempotency_key   TEXT,
    request_hash      TEXT,
    response_status   INTEGER,
    response_type     TEXT,
    response_body     BLOB,
    created_at        INTEGER NOT NULL,   -- unix milliseconds
    expires_at        INTEGER NOT NULL    -- unix milliseconds
);
CREATE UNIQUE INDEX llm_reservations_idempotency ON llm_reservations(team, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX llm_reservations_held ON llm_reservations(expires_at) WHERE state = 'held';
CREATE INDEX llm_reservations_created ON llm_reservations(created_at);

-- One row per gateway request, for dashboards and billing.
CREATE TABLE llm_usage (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,     -- unix milliseconds
    team             TEXT NOT NULL,
    workspace_id     TEXT NOT NULL DEFAULT '',
    key_id           INTEGER,
    key_name         TEXT,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    request_type     TEXT NOT NULL,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost_nanocents   INTEGER NOT NULL DEFAULT 0,
    latency_ms       INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    error_type       TEXT,
    trace_id         TEXT,
    idempotency_key  TEXT,
    reservation_id   TEXT
);
CREATE INDEX llm_usage_team_at ON llm_usage(team, at);
