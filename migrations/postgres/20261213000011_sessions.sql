-- Browser sessions on PostgreSQL, shared by every replica: the table
-- tower-sessions' PostgresStore reads (SQLite: created by SqliteStore at
-- start). Created here so replicas starting together create it once.
CREATE SCHEMA IF NOT EXISTS tower_sessions;
CREATE TABLE IF NOT EXISTS tower_sessions.session (
    id          TEXT PRIMARY KEY NOT NULL,
    data        BYTEA NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS session_expiry ON tower_sessions.session (expiry_date);
