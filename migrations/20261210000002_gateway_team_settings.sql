-- Each team's gateway settings: response cache, guardrails, request logs,
-- rotation policy for its own provider keys.
CREATE TABLE llm_gateway_settings (
    team                TEXT PRIMARY KEY REFERENCES teams(name) ON DELETE CASCADE,
    cache_ttl_secs      INTEGER NOT NULL DEFAULT 0 CHECK (cache_ttl_secs BETWEEN 0 AND 86400),
    guardrail_detectors TEXT NOT NULL DEFAULT '[]',
    guardrail_prompt    TEXT NOT NULL DEFAULT 'off' CHECK (guardrail_prompt IN ('off', 'report', 'redact', 'block')),
    guardrail_response  TEXT NOT NULL DEFAULT 'off' CHECK (guardrail_response IN ('off', 'report', 'redact', 'block')),
    log_requests        INTEGER NOT NULL DEFAULT 0,
    log_bodies          INTEGER NOT NULL DEFAULT 0,
    log_retention_days  INTEGER NOT NULL DEFAULT 7 CHECK (log_retention_days BETWEEN 1 AND 90),
    key_rotation_days   INTEGER CHECK (key_rotation_days BETWEEN 1 AND 3650),
    updated_by          TEXT NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- A cache hit costs nothing; what it saved is kept beside it.
ALTER TABLE llm_usage ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_usage ADD COLUMN saved_nanocents INTEGER NOT NULL DEFAULT 0;
-- Guardrail findings: detectors and counts, never the matched text.
ALTER TABLE llm_usage ADD COLUMN guardrails TEXT;

-- Request logs, for debugging a feature (opt-in per team; bodies masked).
CREATE TABLE llm_request_logs (
    id             INTEGER PRIMARY KEY,
    team           TEXT NOT NULL,
    at             INTEGER NOT NULL,          -- unix ms (the ledger's clock)
    key_name       TEXT,
    request_type   TEXT NOT NULL,
    model          TEXT NOT NULL,
    deployment     TEXT,
    status         INTEGER NOT NULL,
    latency_ms     INTEGER NOT NULL,
    feature        TEXT,
    trace_id       TEXT,
    cache_hit      INTEGER NOT NULL DEFAULT 0,
    guardrails     TEXT,
    request_body   TEXT,
    response_body  TEXT
);
CREATE INDEX llm_request_logs_team_at ON llm_request_logs (team, at DESC);
CREATE INDEX llm_request_logs_at ON llm_request_logs (at);
