-- Personal API tokens on PostgreSQL (SQLite: migrations/20261127000001_foundation.sql
-- and 20261202000001_token_lifetimes.sql). Only a SHA-256 hash is kept.
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    token_hash      TEXT NOT NULL UNIQUE,
    token_prefix    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT,
    revoked_at      BIGINT,
    expires_at      BIGINT,
    UNIQUE (user_id, name)
);
