-- Secret metadata on PostgreSQL (SQLite: migrations/20261127000003_secrets.sql).
-- No secret value is ever stored.
CREATE TABLE secrets (
    id                BIGSERIAL PRIMARY KEY,
    team              TEXT NOT NULL,
    holder            TEXT NOT NULL,                    -- service name, '_team' or '_llm'
    name              TEXT NOT NULL,
    current_version   BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        BIGINT NOT NULL,
    updated_by        TEXT NOT NULL,
    UNIQUE (team, holder, name)
);

CREATE TABLE secret_versions (
    secret_id         BIGINT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    vault_request_id  TEXT,
    PRIMARY KEY (secret_id, version)
);

-- One row per service (or team-wide scope): the desired Vault policy and
-- Kubernetes role, and when each was last written successfully.
CREATE TABLE secret_access (
    team              TEXT NOT NULL,
    holder            TEXT NOT NULL,
    policy_name       TEXT NOT NULL,
    role_name         TEXT,
    namespace         TEXT,
    service_account   TEXT,
    policy_synced_at  BIGINT,
    role_synced_at    BIGINT,
    last_attempt_at   BIGINT NOT NULL,
    last_error        TEXT,
    PRIMARY KEY (team, holder)
);
