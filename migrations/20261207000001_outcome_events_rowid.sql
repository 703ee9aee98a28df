-- Raw deliveries are kept in arrival order (a rowid table) with the
-- (source, delivery id) key as a unique index beside it. Keyed by a random
-- delivery id, the WITHOUT ROWID table put each multi-kilobyte body at a
-- random place in the tree, splitting and rewriting pages on every insert;
-- appended, a body is written once and only the small key lands at random.
CREATE TABLE outcome_events_new (
    id            INTEGER PRIMARY KEY,
    source_id     TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    event         TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    body          TEXT NOT NULL,
    facts         INTEGER NOT NULL                   -- how many facts it told
);
INSERT INTO outcome_events_new (source_id, delivery_id, event, received_at, body, facts)
    SELECT source_id, delivery_id, event, received_at, body, facts FROM outcome_events ORDER BY received_at;
DROP TABLE outcome_events;
ALTER TABLE outcome_events_new RENAME TO outcome_events;
CREATE UNIQUE INDEX outcome_events_delivery ON outcome_events(source_id, delivery_id);
CREATE INDEX outcome_events_received ON outcome_events(received_at);

-- A source's count and last delivery follow its kept deliveries in the same
-- statement (one round trip less for every batch the writer commits).
CREATE TRIGGER outcome_events_count AFTER INSERT ON outcome_events
BEGIN
    UPDATE outcome_sources
       SET last_event_at = MAX(COALESCE(last_event_at, 0), NEW.received_at),
           event_count = event_count + 1
     WHERE id = NEW.source_id;
END;
