-- Foundation: people, teams, who belongs where, personal API tokens, audit log.
-- Timestamps are seconds since the Unix epoch (UTC).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    subject         TEXT NOT NULL UNIQUE,          -- the OpenID Connect `sub`
    email           TEXT,
    display_name    TEXT NOT NULL,
    platform_roles  TEXT NOT NULL DEFAULT '',      -- comma-separated: platform_pm, platform_admin
    created_at      INTEGER NOT NULL,
    last_login_at   INTEGER
);

CREATE TABLE teams (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
    display_name    TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    team_id         INTEGER NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('member', 'lead')),
    PRIMARY KEY (user_id, team_id)
);
CREATE INDEX memberships_team ON memberships(team_id);

-- Personal API tokens. Only a SHA-256 hash of the token is kept; the prefix
-- lets a person recognise a token in the list without it being usable.
CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    token_hash      TEXT NOT NULL UNIQUE,
    token_prefix    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    revoked_at      INTEGER,
    UNIQUE (user_id, name)
);

CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,      -- "user:<subject>" or "service:<name>"
    action          TEXT NOT NULL,      -- e.g. "token.create"
    target          TEXT NOT NULL,
    before_json     TEXT,
    after_json      TEXT
);
CREATE INDEX audit_log_at ON audit_log(at DESC);
