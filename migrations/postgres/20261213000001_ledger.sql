-- The LLM budget ledger on PostgreSQL, shared by every replica.
--
-- One row per budget (team-wide: workspace_id = '') is the fleet's single
-- truth: what was spent in the current period and what in-flight requests
-- hold. Every change goes through the functions below, each one statement
-- (one round trip) that locks the rows it changes, so N replicas never admit
-- more than the limit between them.
--
-- Lock order, which keeps these functions free of deadlocks: a reservation
-- row before budget rows, and budget rows by (team, workspace_id). Nobody
-- waits for a reservation row while holding a budget row.

CREATE TABLE llm_budget_scopes (
    team TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    limit_nanocents BIGINT NOT NULL CHECK (limit_nanocents >= 0),
    -- false: the limit only alerts (on_limit = alert).
    blocking BOOLEAN NOT NULL,
    soft_alert_percent BIGINT NOT NULL CHECK (soft_alert_percent BETWEEN 1 AND 100),
    -- Requests and tokens per minute, fleet-wide, when limited.
    rpm_limit BIGINT CHECK (rpm_limit > 0),
    tpm_limit BIGINT CHECK (tpm_limit > 0),
    -- The current period [period_start, period_end), unix ms.
    period_start BIGINT NOT NULL DEFAULT 0,
    period_end BIGINT NOT NULL DEFAULT 0,
    spent_nanocents BIGINT NOT NULL DEFAULT 0,
    reserved_nanocents BIGINT NOT NULL DEFAULT 0 CHECK (reserved_nanocents >= 0),
    -- The period whose soft alert was raised (once per period, fleet-wide).
    alerted_period_start BIGINT,
    PRIMARY KEY (team, workspace_id)
);

CREATE TABLE llm_reservations (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    workspace_id TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    amount_nanocents BIGINT NOT NULL CHECK (amount_nanocents >= 0),
    -- What it finally cost (settled, or charged after it expired).
    cost_nanocents BIGINT,
    state TEXT NOT NULL CHECK (state IN ('held', 'settled', 'voided', 'expired')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT,
    -- The replica that holds it (for the logs; any replica may expire it).
    replica TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT,
    response_status INTEGER,
    response_type TEXT,
    response_body BYTEA
);
-- An idempotency key is unique per team across the fleet.
CREATE UNIQUE INDEX llm_reservations_idempotency ON llm_reservations (team, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX llm_reservations_held ON llm_reservations (expires_at) WHERE state = 'held';

-- Requests and tokens per second of budgets with a per-minute limit: the
-- last 60 seconds' rows are the sliding window every replica checks.
CREATE TABLE llm_rate_seconds (
    team TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    second BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (team, workspace_id, second)
);

-- The period bounds a replica computed for `now` in the configured time zone:
-- [day_start, day_end, week_start, week_end, month_start, month_end].
CREATE FUNCTION paved_period_bounds(p_period TEXT, p_bounds BIGINT[], OUT start_ms BIGINT, OUT end_ms BIGINT)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_period WHEN 'daily' THEN p_bounds[1] WHEN 'weekly' THEN p_bounds[3] ELSE p_bounds[5] END,
           CASE p_period WHEN 'daily' THEN p_bounds[2] WHEN 'weekly' THEN p_bounds[4] ELSE p_bounds[6] END
$$;

-- Holds p_amount against the team's budget and the workspace's (if it has
-- one), or refuses. outcome: held | no_budget | rate_limited | exceeded |
-- in_flight; on exceeded, the refusing budget's figures. Per-minute limits
-- are checked first (outcome rate_limited, with what, the limit and when to
-- retry). A budget whose period has ended (by the bounds the replica passed)
-- moves into the new one as it is locked: spend restarts at zero, holds carry
-- over; a replica whose clock lags never moves a budget back.
CREATE FUNCTION paved_reserve(
    p_id TEXT, p_team TEXT, p_workspace TEXT, p_model TEXT, p_amount BIGINT,
    p_now BIGINT, p_expires_at BIGINT, p_replica TEXT,
    p_idempotency_key TEXT, p_request_hash TEXT, p_bounds BIGINT[], p_estimated_tokens BIGINT,
    OUT outcome TEXT, OUT scope_workspace TEXT, OUT scope_period TEXT, OUT limit_nanocents BIGINT,
    OUT committed_nanocents BIGINT, OUT period_end BIGINT,
    OUT rate_what TEXT, OUT rate_limit BIGINT, OUT retry_after_secs BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    s llm_budget_scopes;
    w RECORD;
    start_ms BIGINT;
    limited BOOLEAN := false;
    now_s BIGINT := floor(p_now / 1000.0)::BIGINT;
BEGIN
    outcome := 'held';
    -- Lock the budgets in order and check every one before holding anything.
    FOR s IN SELECT * FROM llm_budget_scopes
              WHERE team = p_team AND workspace_id IN ('', p_workspace)
              ORDER BY workspace_id FOR UPDATE LOOP
        IF s.workspace_id = '' THEN
            scope_workspace := '';
        ELSIF scope_workspace IS NULL THEN
            -- The team itself has no budget.
            EXIT;
        END IF;
        start_ms := CASE s.period WHEN 'daily' THEN p_bounds[1] WHEN 'weekly' THEN p_bounds[3] ELSE p_bounds[5] END;
        IF start_ms > s.period_start THEN
            s.period_start := start_ms;
            s.period_end := CASE s.period WHEN 'daily' THEN p_bounds[2] WHEN 'weekly' THEN p_bounds[4] ELSE p_bounds[6] END;
            s.spent_nanocents := 0;
            UPDATE llm_budget_scopes
               SET period_start = s.period_start, period_end = s.period_end, spent_nanocents = 0
             WHERE team = s.team AND workspace_id = s.workspace_id;
        END IF;
        IF s.rpm_limit IS NOT NULL OR s.tpm_limit IS NOT NULL THEN
            limited := true;
            SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(tokens), 0) AS tokens,
                   COALESCE(MIN(second), now_s) AS oldest
              INTO w FROM llm_rate_seconds
             WHERE team = p_team AND workspace_id = s.workspace_id AND second > now_s - 60;
            IF s.rpm_limit IS NOT NULL AND w.requests + 1 > s.rpm_limit THEN
                outcome := 'rate_limited';
                rate_what := 'requests';
                rate_limit := s.rpm_limit;
            ELSIF s.tpm_limit IS NOT NULL AND w.tokens > 0 AND w.tokens + p_estimated_tokens > s.tpm_limit THEN
                outcome := 'rate_limited';
                rate_what := 'tokens';
                rate_limit := s.tpm_limit;
            END IF;
            IF outcome = 'rate_limited' THEN
                scope_workspace := s.workspace_id;
                retry_after_secs := GREATEST(w.oldest + 60 - now_s, 1);
                RETURN;
            END IF;
        END IF;
        IF s.blocking AND s.spent_nanocents + s.reserved_nanocents + p_amount > s.limit_nanocents THEN
            outcome := 'exceeded';
            scope_workspace := s.workspace_id;
            scope_period := s.period;
            limit_nanocents := s.limit_nanocents;
            committed_nanocents := s.spent_nanocents + s.reserved_nanocents;
            period_end := s.period_end;
            RETURN;
        END IF;
    END LOOP;
    IF scope_workspace IS NULL THEN
        outcome := 'no_budget';
        RETURN;
    END IF;
    scope_workspace := NULL;
    IF p_idempotency_key IS NOT NULL THEN
        -- A finished request's key may be used again (the caller checked
        -- there is nothing to replay); one still held may not.
        UPDATE llm_reservations SET idempotency_key = NULL
         WHERE team = p_team AND idempotency_key = p_idempotency_key AND state <> 'held';
    END IF;
    INSERT INTO llm_reservations (id, team, workspace_id, model, amount_nanocents, state,
                                  created_at, expires_at, replica, idempotency_key, request_hash)
    VALUES (p_id, p_team, p_workspace, p_model, p_amount, 'held',
            p_now, p_expires_at, p_replica, p_idempotency_key, p_request_hash)
    ON CONFLICT (team, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        outcome := 'in_flight';
        RETURN;
    END IF;
    UPDATE llm_budget_scopes SET reserved_nanocents = reserved_nanocents + p_amount
     WHERE team = p_team AND workspace_id IN ('', p_workspace);
    IF limited THEN
        INSERT INTO llm_rate_seconds (team, workspace_id, second, requests)
        SELECT team, workspace_id, now_s, 1 FROM llm_budget_scopes
         WHERE team = p_team AND workspace_id IN ('', p_workspace)
           AND (rpm_limit IS NOT NULL OR tpm_limit IS NOT NULL)
        ON CONFLICT (team, workspace_id, second) DO UPDATE SET requests = llm_rate_seconds.requests + 1;
    END IF;
END
$$;

-- Raises a held reservation to p_amount, taking only the difference against
-- its budgets, or refuses (outcome: grown | lapsed | exceeded).
CREATE FUNCTION paved_grow(
    p_id TEXT, p_amount BIGINT, p_bounds BIGINT[],
    OUT outcome TEXT, OUT scope_workspace TEXT, OUT scope_period TEXT, OUT limit_nanocents BIGINT,
    OUT committed_nanocents BIGINT, OUT period_end BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    r llm_reservations;
    s llm_budget_scopes;
    start_ms BIGINT;
    extra BIGINT;
BEGIN
    SELECT * INTO r FROM llm_reservations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR r.state <> 'held' THEN
        outcome := 'lapsed';
        RETURN;
    END IF;
    extra := p_amount - r.amount_nanocents;
    outcome := 'grown';
    IF extra <= 0 THEN
        RETURN;
    END IF;
    FOR s IN SELECT * FROM llm_budget_scopes
              WHERE team = r.team AND workspace_id IN ('', r.workspace_id)
              ORDER BY workspace_id FOR UPDATE LOOP
        start_ms := CASE s.period WHEN 'daily' THEN p_bounds[1] WHEN 'weekly' THEN p_bounds[3] ELSE p_bounds[5] END;
        IF start_ms > s.period_start THEN
            s.period_start := start_ms;
            s.period_end := CASE s.period WHEN 'daily' THEN p_bounds[2] WHEN 'weekly' THEN p_bounds[4] ELSE p_bounds[6] END;
            s.spent_nanocents := 0;
            UPDATE llm_budget_scopes
               SET period_start = s.period_start, period_end = s.period_end, spent_nanocents = 0
             WHERE team = s.team AND workspace_id = s.workspace_id;
        END IF;
        IF s.blocking AND s.spent_nanocents + s.reserved_nanocents + extra > s.limit_nanocents THEN
            outcome := 'exceeded';
            scope_workspace := s.workspace_id;
            scope_period := s.period;
            limit_nanocents := s.limit_nanocents;
            committed_nanocents := s.spent_nanocents + s.reserved_nanocents;
            period_end := s.period_end;
            RETURN;
        END IF;
    END LOOP;
    UPDATE llm_reservations SET amount_nanocents = p_amount WHERE id = p_id;
    UPDATE llm_budget_scopes SET reserved_nanocents = reserved_nanocents + extra
     WHERE team = r.team AND workspace_id IN ('', r.workspace_id);
END
$$;

-- Ends a reservation: settled (p_cost charged, p_tokens counted against
-- tokens-per-minute limits, the response kept for idempotent replay) or
-- voided (nothing charged). A reservation another replica already expired is
-- still charged (the provider was paid) but its hold is not released twice;
-- one already settled or voided is left alone (outcome: finished | late |
-- already). alert_*: the soft alert this charge raised, once per budget and
-- period across the fleet.
CREATE FUNCTION paved_finish(
    p_id TEXT, p_state TEXT, p_cost BIGINT, p_now BIGINT, p_bounds BIGINT[],
    p_response_status INTEGER, p_response_type TEXT, p_response_body BYTEA, p_tokens BIGINT,
    OUT outcome TEXT, OUT alert_workspace TEXT, OUT alert_percent BIGINT,
    OUT alert_spent_nanocents BIGINT, OUT alert_limit_nanocents BIGINT, OUT alert_period_start BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    r llm_reservations;
    s llm_budget_scopes;
    start_ms BIGINT;
    release BIGINT;
    charge BIGINT;
    alert_now BOOLEAN;
BEGIN
    IF p_state NOT IN ('settled', 'voided') THEN
        RAISE EXCEPTION 'paved_finish: unknown state %', p_state;
    END IF;
    SELECT * INTO r FROM llm_reservations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR r.state IN ('settled', 'voided') THEN
        outcome := 'already';
        RETURN;
    END IF;
    outcome := CASE WHEN r.state = 'held' THEN 'finished' ELSE 'late' END;
    UPDATE llm_reservations
       SET state = CASE WHEN r.state = 'expired' AND p_state = 'voided' THEN 'expired' ELSE p_state END,
           cost_nanocents = CASE WHEN p_state = 'settled' THEN p_cost END,
           finished_at = p_now,
           response_status = p_response_status, response_type = p_response_type,
           response_body = p_response_body
     WHERE id = p_id;
    release := CASE WHEN r.state = 'held' THEN r.amount_nanocents ELSE 0 END;
    charge := CASE WHEN p_state = 'settled' THEN p_cost ELSE 0 END;
    IF release = 0 AND charge = 0 AND p_tokens <= 0 THEN
        RETURN;
    END IF;
    FOR s IN SELECT * FROM llm_budget_scopes
              WHERE team = r.team AND workspace_id IN ('', r.workspace_id)
              ORDER BY workspace_id FOR UPDATE LOOP
        start_ms := CASE s.period WHEN 'daily' THEN p_bounds[1] WHEN 'weekly' THEN p_bounds[3] ELSE p_bounds[5] END;
        IF start_ms > s.period_start THEN
            s.period_start := start_ms;
            s.period_end := CASE s.period WHEN 'daily' THEN p_bounds[2] WHEN 'weekly' THEN p_bounds[4] ELSE p_bounds[6] END;
            s.spent_nanocents := 0;
        END IF;
        s.spent_nanocents := s.spent_nanocents + charge;
        alert_now := charge > 0
            AND s.spent_nanocents >= s.limit_nanocents / 100 * s.soft_alert_percent
            AND s.alerted_period_start IS DISTINCT FROM s.period_start;
        UPDATE llm_budget_scopes
           SET period_start = s.period_start, period_end = s.period_end,
               spent_nanocents = s.spent_nanocents,
               reserved_nanocents = reserved_nanocents - release,
               alerted_period_start = CASE WHEN alert_now THEN s.period_start ELSE alerted_period_start END
         WHERE team = s.team AND workspace_id = s.workspace_id;
        IF alert_now AND alert_workspace IS NULL THEN
            alert_workspace := s.workspace_id;
            alert_percent := s.soft_alert_percent;
            alert_spent_nanocents := s.spent_nanocents;
            alert_limit_nanocents := s.limit_nanocents;
            alert_period_start := s.period_start;
        END IF;
        IF p_tokens > 0 AND p_state = 'settled' AND (s.rpm_limit IS NOT NULL OR s.tpm_limit IS NOT NULL) THEN
            INSERT INTO llm_rate_seconds (team, workspace_id, second, tokens)
            VALUES (s.team, s.workspace_id, floor(p_now / 1000.0)::BIGINT, p_tokens)
            ON CONFLICT (team, workspace_id, second) DO UPDATE SET tokens = llm_rate_seconds.tokens + EXCLUDED.tokens;
        END IF;
    END LOOP;
END
$$;

-- Batches: a replica sends the reservations (and, separately, the
-- finishes) that arrived while its previous call ran as one call, so a busy
-- budget row is locked once per batch rather than once per request. Each
-- batch takes its budgets in (team, workspace) order and a finish batch locks
-- all its reservations first, keeping the lock order above. `idx` is the
-- 1-based position in the arrays.
CREATE FUNCTION paved_reserve_many(
    p_ids TEXT[], p_teams TEXT[], p_workspaces TEXT[], p_models TEXT[], p_amounts BIGINT[],
    p_keys TEXT[], p_hashes TEXT[], p_estimated_tokens BIGINT[],
    p_now BIGINT, p_expires_at BIGINT, p_replica TEXT, p_bounds BIGINT[])
RETURNS TABLE (idx INTEGER, outcome TEXT, scope_workspace TEXT, scope_period TEXT, limit_nanocents BIGINT,
               committed_nanocents BIGINT, period_end BIGINT,
               rate_what TEXT, rate_limit BIGINT, retry_after_secs BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
BEGIN
    FOR i IN SELECT t.ord FROM unnest(p_teams) WITH ORDINALITY AS t(team, ord) ORDER BY t.team, t.ord LOOP
        idx := i;
        SELECT * INTO outcome, scope_workspace, scope_period, limit_nanocents, committed_nanocents,
                      period_end, rate_what, rate_limit, retry_after_secs
          FROM paved_reserve(p_ids[i], p_teams[i], p_workspaces[i], p_models[i], p_amounts[i],
                             p_now, p_expires_at, p_replica, p_keys[i], p_hashes[i], p_bounds,
                             p_estimated_tokens[i]);
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE FUNCTION paved_finish_many(
    p_ids TEXT[], p_states TEXT[], p_costs BIGINT[], p_tokens BIGINT[],
    p_statuses INTEGER[], p_types TEXT[], p_bodies BYTEA[], p_now BIGINT, p_bounds BIGINT[])
RETURNS TABLE (idx INTEGER, outcome TEXT, alert_workspace TEXT, alert_percent BIGINT,
               alert_spent_nanocents BIGINT, alert_limit_nanocents BIGINT, alert_period_start BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
BEGIN
    PERFORM 1 FROM llm_reservations WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE;
    FOR i IN SELECT t.ord FROM unnest(p_ids) WITH ORDINALITY AS t(id, ord)
               LEFT JOIN llm_reservations r ON r.id = t.id
              ORDER BY r.team, t.ord LOOP
        idx := i;
        SELECT * INTO outcome, alert_workspace, alert_percent, alert_spent_nanocents,
                      alert_limit_nanocents, alert_period_start
          FROM paved_finish(p_ids[i], p_states[i], p_costs[i], p_now, p_bounds,
                            p_statuses[i], p_types[i], p_bodies[i], p_tokens[i]);
        RETURN NEXT;
    END LOOP;
END
$$;

-- Releases every hold whose time has passed, whichever replica made it (a
-- replica that died leaves its holds to the others). Holds another
-- transaction is finishing are skipped, not waited for. Returns how many.
CREATE FUNCTION paved_expire(p_now BIGINT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    teams TEXT[];
    workspaces TEXT[];
    amounts BIGINT[];
BEGIN
    WITH lapsed AS (
        SELECT id FROM llm_reservations
         WHERE state = 'held' AND expires_at <= p_now
         ORDER BY id FOR UPDATE SKIP LOCKED
    ), gone AS (
        UPDATE llm_reservations r SET state = 'expired', finished_at = p_now
          FROM lapsed WHERE r.id = lapsed.id
        RETURNING r.team, r.workspace_id, r.amount_nanocents
    )
    SELECT array_agg(team), array_agg(workspace_id), array_agg(amount_nanocents)
      INTO teams, workspaces, amounts FROM gone;
    -- Seconds that left every window.
    DELETE FROM llm_rate_seconds WHERE second < floor(p_now / 1000.0)::BIGINT - 120;
    IF teams IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM llm_budget_scopes s
      WHERE EXISTS (SELECT 1 FROM unnest(teams, workspaces) AS l(team, workspace_id)
                     WHERE l.team = s.team AND s.workspace_id IN ('', l.workspace_id))
      ORDER BY s.team, s.workspace_id FOR UPDATE OF s;
    UPDATE llm_budget_scopes s SET reserved_nanocents = reserved_nanocents - t.amount
      FROM (SELECT l.team, b.ws, SUM(l.amount)::BIGINT AS amount
              FROM unnest(teams, workspaces, amounts) AS l(team, workspace_id, amount)
              CROSS JOIN LATERAL (SELECT '' UNION SELECT l.workspace_id) AS b(ws)
             GROUP BY l.team, b.ws) t
     WHERE s.team = t.team AND s.workspace_id = t.ws;
    RETURN cardinality(teams);
END
$$;
