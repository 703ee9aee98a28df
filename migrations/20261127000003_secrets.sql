-- Vault secrets: metadata only. Values live in Vault and never reach this
-- database; these rows say which secrets exist, their versions, who wrote
-- them, and whether each service's Vault policy and Kubernetes role are in place.

CREATE TABLE secrets (
    id                INTEGER PRIMARY KEY,
    team              TEXT NOT NULL,
    holder            TEXT NOT NULL,                    -- service name, '_team' or '_llm'
    name              TEXT NOT NULL,
    current_version   INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        INTEGER NOT NULL,
    updated_by        TEXT NOT NULL,
    UNIQUE (team, holder, name)
);

CREATE TABLE secret_versions (
    secret_id         INTEGER NOT NULL REFERENCES secrets(id) ON DELETE CASCADE,
    version           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
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
    policy_synced_at  INTEGER,
    role_synced_at    INTEGER,
    last_attempt_at   INTEGER NOT NULL,
    last_error        TEXT,
    PRIMARY KEY (team, holder)
);
