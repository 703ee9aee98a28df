-- Gateway keys on PostgreSQL (SQLite: migrations/20261127000005_llm_budgets.sql):
-- only a SHA-256 hash of each key is kept.
CREATE TABLE llm_gateway_keys (
    id            BIGSERIAL PRIMARY KEY,
    team          TEXT NOT NULL,
    workspace_id  TEXT,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    key_hash      TEXT NOT NULL UNIQUE,
    key_prefix    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX llm_gateway_keys_team ON llm_gateway_keys (team);
