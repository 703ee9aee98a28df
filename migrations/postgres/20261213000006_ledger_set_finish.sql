-- Finishing a batch set-wise: the reservations are finished in one statement,
-- then each budget row the batch touches is locked once (in (team,
-- workspace_id) order) and charged the batch's sum, instead of every
-- reservation locking and updating its budget rows in turn. Same results as
-- before: a soft alert the batch raises is returned on one of the batch's
-- reservations of that budget (each reservation carries at most one alert; a
-- budget whose alert finds none free raises it at its next charge).
-- paved_finish, which finished one reservation at a time, goes.
CREATE OR REPLACE FUNCTION paved_finish_many(
    p_ids TEXT[], p_states TEXT[], p_costs BIGINT[], p_tokens BIGINT[],
    p_statuses INTEGER[], p_types TEXT[], p_bodies BYTEA[], p_now BIGINT, p_bounds BIGINT[])
RETURNS TABLE (idx INTEGER, outcome TEXT, alert_workspace TEXT, alert_percent BIGINT,
               alert_spent_nanocents BIGINT, alert_limit_nanocents BIGINT, alert_period_start BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := cardinality(p_ids);
    outcomes TEXT[] := array_fill('already'::TEXT, ARRAY[n]);
    a_ws TEXT[] := array_fill(NULL::TEXT, ARRAY[n]);
    a_pct BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    a_spent BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    a_limit BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    a_start BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    it_team TEXT[] := '{}';
    it_ws TEXT[] := '{}';
    it_release BIGINT[] := '{}';
    it_charge BIGINT[] := '{}';
    it_tokens BIGINT[] := '{}';
    it_idx INTEGER[] := '{}';
    r RECORD;
    s llm_budget_scopes;
    t RECORD;
    start_ms BIGINT;
    alert_now BOOLEAN;
    free_ix INTEGER;
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_states) AS st(state) WHERE state NOT IN ('settled', 'voided')) THEN
        RAISE EXCEPTION 'paved_finish_many: unknown state';
    END IF;
    FOR r IN
        WITH input AS (
            SELECT i.ord::INTEGER AS ix, i.id, i.state, i.cost, i.tokens, i.status, i.type, i.body
              FROM unnest(p_ids, p_states, p_costs, p_tokens, p_statuses, p_types, p_bodies)
                   WITH ORDINALITY AS i(id, state, cost, tokens, status, type, body, ord)
        ), firsts AS (
            SELECT DISTINCT ON (id) * FROM input ORDER BY id, ix
        ), locked AS (
            SELECT res.id, res.team, res.workspace_id, res.amount_nanocents, res.state AS old_state
              FROM llm_reservations res
             WHERE res.id IN (SELECT id FROM firsts)
             ORDER BY res.id FOR UPDATE
        ), done AS (
            UPDATE llm_reservations res
               SET state = CASE WHEN l.old_state = 'expired' AND f.state = 'voided' THEN 'expired' ELSE f.state END,
                   cost_nanocents = CASE WHEN f.state = 'settled' THEN f.cost END,
                   finished_at = p_now,
                   response_status = f.status, response_type = f.type, response_body = f.body
              FROM locked l JOIN firsts f ON f.id = l.id
             WHERE res.id = l.id AND l.old_state IN ('held', 'expired')
            RETURNING res.id
        )
        SELECT f.ix, f.state, f.cost, f.tokens, l.team, l.workspace_id, l.amount_nanocents, l.old_state
          FROM locked l JOIN firsts f ON f.id = l.id
         WHERE l.old_state IN ('held', 'expired')
    LOOP
        outcomes[r.ix] := CASE WHEN r.old_state = 'held' THEN 'finished' ELSE 'late' END;
        it_team := it_team || r.team;
        it_ws := it_ws || r.workspace_id;
        it_release := it_release || CASE WHEN r.old_state = 'held' THEN r.amount_nanocents ELSE 0 END;
        it_charge := it_charge || CASE WHEN r.state = 'settled' THEN r.cost ELSE 0 END;
        it_tokens := it_tokens || CASE WHEN r.state = 'settled' THEN r.tokens ELSE 0 END;
        it_idx := it_idx || r.ix;
    END LOOP;
    FOR s IN SELECT sc.* FROM llm_budget_scopes sc
              WHERE EXISTS (SELECT 1 FROM unnest(it_team, it_ws) AS i(team, ws)
                             WHERE i.team = sc.team AND sc.workspace_id IN ('', i.ws))
              ORDER BY sc.team, sc.workspace_id FOR UPDATE LOOP
        SELECT COALESCE(SUM(i.rel), 0)::BIGINT AS rel, COALESCE(SUM(i.chg), 0)::BIGINT AS chg,
               COALESCE(SUM(i.tok), 0)::BIGINT AS tok
          INTO t
          FROM unnest(it_team, it_ws, it_release, it_charge, it_tokens, it_idx) AS i(team, ws, rel, chg, tok, ix)
         WHERE i.team = s.team AND (s.workspace_id = '' OR i.ws = s.workspace_id);
        IF t.rel = 0 AND t.chg = 0 AND t.tok = 0 THEN
            CONTINUE;
        END IF;
        start_ms := CASE s.period WHEN 'daily' THEN p_bounds[1] WHEN 'weekly' THEN p_bounds[3] ELSE p_bounds[5] END;
        IF start_ms > s.period_start THEN
            s.period_start := start_ms;
            s.period_end := CASE s.period WHEN 'daily' THEN p_bounds[2] WHEN 'weekly' THEN p_bounds[4] ELSE p_bounds[6] END;
            s.spent_nanocents := 0;
        END IF;
        s.spent_nanocents := s.spent_nanocents + t.chg;
        -- The alert travels on one of this budget's reservations that carries
        -- none yet; with none free it stays unclaimed for the next charge.
        SELECT MIN(i.ix) INTO free_ix
          FROM unnest(it_team, it_ws, it_idx) AS i(team, ws, ix)
         WHERE i.team = s.team AND (s.workspace_id = '' OR i.ws = s.workspace_id)
           AND a_ws[i.ix] IS NULL;
        alert_now := t.chg > 0
            AND s.spent_nanocents >= s.limit_nanocents / 100 * s.soft_alert_percent
            AND s.alerted_period_start IS DISTINCT FROM s.period_start
            AND free_ix IS NOT NULL;
        UPDATE llm_budget_scopes
           SET period_start = s.period_start, period_end = s.period_end,
               spent_nanocents = s.spent_nanocents,
               reserved_nanocents = reserved_nanocents - t.rel,
               alerted_period_start = CASE WHEN alert_now THEN s.period_start ELSE alerted_period_start END
         WHERE team = s.team AND workspace_id = s.workspace_id;
        IF alert_now THEN
            a_ws[free_ix] := s.workspace_id;
            a_pct[free_ix] := s.soft_alert_percent;
            a_spent[free_ix] := s.spent_nanocents;
            a_limit[free_ix] := s.limit_nanocents;
            a_start[free_ix] := s.period_start;
        END IF;
        IF t.tok > 0 AND (s.rpm_limit IS NOT NULL OR s.tpm_limit IS NOT NULL) THEN
            INSERT INTO llm_rate_seconds (team, workspace_id, second, tokens)
            VALUES (s.team, s.workspace_id, floor(p_now / 1000.0)::BIGINT, t.tok)
            ON CONFLICT (team, workspace_id, second) DO UPDATE SET tokens = llm_rate_seconds.tokens + EXCLUDED.tokens;
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT g::INTEGER, outcomes[g], a_ws[g], a_pct[g], a_spent[g], a_limit[g], a_start[g]
          FROM generate_series(1, n) AS g;
END
$$;

DROP FUNCTION paved_finish(TEXT, TEXT, BIGINT, BIGINT, BIGINT[], INTEGER, TEXT, BYTEA, BIGINT);
