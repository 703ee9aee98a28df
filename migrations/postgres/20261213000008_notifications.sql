-- In-portal notifications on PostgreSQL (SQLite: migrations/20261127000004_scaffolder.sql
-- and 20261202000003_notification_reads.sql): read marks are kept per person.
CREATE TABLE notifications (
    id                BIGSERIAL PRIMARY KEY,
    recipient         TEXT NOT NULL,                    -- user:default/dana or group:default/payments
    title             TEXT NOT NULL,
    description       TEXT,
    link              TEXT,
    severity          TEXT NOT NULL DEFAULT 'normal' CHECK (severity IN ('low', 'normal', 'high', 'critical')),
    origin            TEXT,                             -- e.g. the task id
    created_at        BIGINT NOT NULL
);
CREATE INDEX notifications_recipient ON notifications (recipient, created_at);

CREATE TABLE notification_reads (
    notification_id   BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    reader            TEXT NOT NULL,                    -- user:default/dana
    read_at           BIGINT NOT NULL,
    PRIMARY KEY (notification_id, reader)
);
