-- Budget rules and their history on PostgreSQL (SQLite:
-- migrations/20261127000005_llm_budgets.sql). The ledger's own rows, what is
-- spent and held, are in llm_budget_scopes (20261213000001_ledger.sql).
CREATE TABLE llm_budgets (
    team                TEXT NOT NULL,
    workspace_id        TEXT NOT NULL DEFAULT '',   -- '' is the team-wide budget
    period              TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    limit_cents         BIGINT NOT NULL CHECK (limit_cents >= 0),
    soft_alert_percent  BIGINT NOT NULL CHECK (soft_alert_percent BETWEEN 1 AND 100),
    on_limit            TEXT NOT NULL CHECK (on_limit IN ('block', 'alert')),
    allowed_models      TEXT NOT NULL DEFAULT '[]', -- JSON array; empty allows every priced model
    rpm_limit           BIGINT CHECK (rpm_limit > 0),
    tpm_limit           BIGINT CHECK (tpm_limit > 0),
    version             BIGINT NOT NULL,
    updated_by          TEXT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (team, workspace_id)
);

CREATE TABLE llm_budget_versions (
    id            BIGSERIAL PRIMARY KEY,
    team          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    version       BIGINT NOT NULL,
    changed_by    TEXT NOT NULL,
    changed_at    BIGINT NOT NULL,
    before_json   TEXT,
    after_json    TEXT NOT NULL,
    UNIQUE (team, workspace_id, version)
);
