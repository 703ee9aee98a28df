-- People, teams and the audit log on PostgreSQL: the same tables as
-- SQLite's (migrations/20261127000001_foundation.sql and later changes),
-- with PostgreSQL's types. Times are unix seconds (BIGINT), as there.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    subject         TEXT NOT NULL UNIQUE,          -- the OpenID Connect `sub`
    email           TEXT,
    display_name    TEXT NOT NULL,
    platform_roles  TEXT NOT NULL DEFAULT '',      -- comma-separated: platform_pm, platform_admin
    created_at      BIGINT NOT NULL,
    last_login_at   BIGINT,
    disabled_at     BIGINT,
    last_active_day BIGINT
);
CREATE INDEX users_last_active ON users (last_active_day);

CREATE TABLE teams (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
    display_name    TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE memberships (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    team_id         BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('member', 'lead')),
    PRIMARY KEY (user_id, team_id)
);
CREATE INDEX memberships_team ON memberships (team_id);

CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    at              BIGINT NOT NULL,
    actor           TEXT NOT NULL,      -- "user:<subject>" or "service:<name>"
    action          TEXT NOT NULL,      -- e.g. "token.create"
    target          TEXT NOT NULL,
    before_json     TEXT,
    after_json      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
