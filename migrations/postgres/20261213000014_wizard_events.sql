-- Wizard funnel events on PostgreSQL (SQLite: migrations/20261127000004_scaffolder.sql).
CREATE TABLE wizard_events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session           TEXT NOT NULL,
    template_ref      TEXT NOT NULL,
    actor             TEXT NOT NULL,
    event             TEXT NOT NULL CHECK (event IN ('started', 'page', 'review', 'dry_run', 'submitted', 'abandoned')),
    page              BIGINT,
    at                BIGINT NOT NULL
);
CREATE INDEX wizard_events_template ON wizard_events (template_ref, at);
CREATE INDEX wizard_events_session ON wizard_events (session);
