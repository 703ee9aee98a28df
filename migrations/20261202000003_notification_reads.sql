-- Whether a notification is read is each reader's own: a team or broadcast
-- notification marked read by one member stays unread for the others.
CREATE TABLE notification_reads (
    notification_id   INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    reader            TEXT NOT NULL,                    -- user:default/dana
    read_at           INTEGER NOT NULL,
    PRIMARY KEY (notification_id, reader)
) WITHOUT ROWID;
-- A personal notification's read mark belongs to its recipient; a shared one's
-- cannot be attributed to anybody and starts unread for everyone.
INSERT INTO notification_reads (notification_id, reader, read_at)
    SELECT id, recipient, read_at FROM notifications
    WHERE read_at IS NOT NULL AND recipient LIKE 'user:%';
ALTER TABLE notifications DROP COLUMN read_at;
