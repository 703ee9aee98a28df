-- The time the gateway itself added to a call (its whole time minus the
-- provider's), in microseconds; NULL when no provider was called.
ALTER TABLE llm_usage ADD COLUMN overhead_us INTEGER;
-- The last day's calls per model (latency percentiles, errors by class).
CREATE INDEX llm_usage_at ON llm_usage(at);

-- Gateway usage rolled up as it is written, for the dashboards that read
-- every team or every model over weeks (a million rows a month is normal):
-- per team and day, and per model and hour. Kept by the triggers below in
-- the same transaction as the usage row, so they never disagree with it.
CREATE TABLE llm_usage_daily (
    team            TEXT NOT NULL,
    day             INTEGER NOT NULL,              -- unix day (UTC)
    requests        INTEGER NOT NULL,
    cost_nanocents  INTEGER NOT NULL,
    PRIMARY KEY (team, day)
) WITHOUT ROWID;
CREATE INDEX llm_usage_daily_day ON llm_usage_daily(day);

CREATE TABLE llm_usage_model_hourly (
    model           TEXT NOT NULL,
    hour            INTEGER NOT NULL,              -- unix hour
    requests        INTEGER NOT NULL,
    failed          INTEGER NOT NULL,              -- answered 5xx (the gateway or its provider failed)
    refused         INTEGER NOT NULL,              -- answered 4xx (budget, limit, bad request)
    timed           INTEGER NOT NULL,              -- calls that reached a provider (overhead measured)
    fast            INTEGER NOT NULL,              -- of those, the gateway added at most 25 ms
    PRIMARY KEY (hour, model)
) WITHOUT ROWID;

INSERT INTO llm_usage_daily (team, day, requests, cost_nanocents)
    SELECT team, at / 86400000, COUNT(*), SUM(cost_nanocents) FROM llm_usage GROUP BY 1, 2;
INSERT INTO llm_usage_model_hourly (model, hour, requests, failed, refused, timed, fast)
    SELECT model, at / 3600000, COUNT(*), SUM(status >= 500), SUM(status BETWEEN 400 AND 499), 0, 0
    FROM llm_usage GROUP BY 1, 2;

CREATE TRIGGER llm_usage_rollup_insert AFTER INSERT ON llm_usage
BEGIN
    INSERT INTO llm_usage_daily (team, day, requests, cost_nanocents)
        VALUES (NEW.team, NEW.at / 86400000, 1, NEW.cost_nanocents)
        ON CONFLICT (team, day) DO UPDATE
           SET requests = requests + 1, cost_nanocents = cost_nanocents + excluded.cost_nanocents;
    INSERT INTO llm_usage_model_hourly (model, hour, requests, failed, refused, timed, fast)
        VALUES (NEW.model, NEW.at / 3600000, 1, NEW.status >= 500, NEW.status BETWEEN 400 AND 499,
                NEW.overhead_us IS NOT NULL, COALESCE(NEW.overhead_us <= 25000, 0))
        ON CONFLICT (hour, model) DO UPDATE
           SET requests = requests + 1, failed = failed + excluded.failed, refused = refused + excluded.refused,
               timed = timed + excluded.timed, fast = fast + excluded.fast;
END;

CREATE TRIGGER llm_usage_rollup_delete AFTER DELETE ON llm_usage
BEGIN
    UPDATE llm_usage_daily
       SET requests = requests - 1, cost_nanocents = cost_nanocents - OLD.cost_nanocents
     WHERE team = OLD.team AND day = OLD.at / 86400000;
    UPDATE llm_usage_model_hourly
       SET requests = requests - 1, failed = failed - (OLD.status >= 500),
           refused = refused - (OLD.status BETWEEN 400 AND 499),
           timed = timed - (OLD.overhead_us IS NOT NULL), fast = fast - COALESCE(OLD.overhead_us <= 25000, 0)
     WHERE hour = OLD.at / 3600000 AND model = OLD.model;
END;
