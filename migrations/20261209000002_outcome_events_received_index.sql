-- No query reads deliveries by arrival time; the index only cost every
-- ingested delivery a page write.
DROP INDEX IF EXISTS outcome_events_received;
