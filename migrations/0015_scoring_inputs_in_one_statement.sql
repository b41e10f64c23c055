-- The scoring path's one statement, with its tenant: sets `ladder.tenant_id`
-- (which the row-level security policies of migration 0007 compare with)
-- and `lock_timeout` for the statement's own transaction only, then returns
-- the row `storage::scoring_inputs` reads. Called as a single statement
-- outside any explicit transaction, so nothing it sets outlives the call:
-- behind a transaction pooler the server connection goes to the next client
-- carrying no tenant and no timeout of this one.
--
-- PL/pgSQL, so that the settings are made before the query is planned and
-- run (a SQL function's statements are planned up front). SECURITY INVOKER
-- (the default, said anyway): the query runs as the caller, under row-level
-- security. `lock_timeout` bounds the one wait a read can meet (a lock held
-- by DDL or a `LOCK TABLE`) by the call's remaining time; the statement's
-- own `statement_timeout` cannot be set from inside it (PostgreSQL arms a
-- statement's timer when the statement starts).
CREATE FUNCTION ladder_scoring_inputs(
    p_tenant text, p_subject text, p_as_of timestamptz, p_lock_timeout text)
RETURNS TABLE (
    framework_revision bigint,
    policy jsonb,
    current_role_id text,
    ids uuid[],
    competencies text[],
    levels double precision[],
    sources text[],
    confidences double precision[],
    observed timestamptz[],
    raters text[],
    calibration_id uuid,
    effect_raters text[],
    leniencies double precision[])
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('ladder.tenant_id', p_tenant, true),
            set_config('lock_timeout', p_lock_timeout, true);
    RETURN QUERY
    SELECT t.framework_revision, p.policy, s.current_role_id,
           e.ids, e.competencies, e.levels, e.sources, e.confidences, e.observed, e.raters,
           c.id, f.rater_ids, f.leniencies
    FROM (SELECT p_tenant AS tenant_id) AS q
    LEFT JOIN tenants t ON t.tenant_id = q.tenant_id
    LEFT JOIN scoring_policies p ON p.tenant_id = q.tenant_id
    LEFT JOIN subjects s ON s.tenant_id = q.tenant_id AND s.id = p_subject
    CROSS JOIN LATERAL (
        SELECT COALESCE(array_agg(ev.id), '{}') AS ids,
               COALESCE(array_agg(ev.competency_id), '{}') AS competencies,
               COALESCE(array_agg(ev.level), '{}') AS levels,
               COALESCE(array_agg(ev.source), '{}') AS sources,
               COALESCE(array_agg(ev.confidence), '{}') AS confidences,
               COALESCE(array_agg(ev.observed_at), '{}') AS observed,
               COALESCE(array_agg(ev.rater_id), '{}') AS raters
        FROM evidence ev
        WHERE ev.tenant_id = p_tenant AND ev.subject_id = p_subject
          AND ev.observed_at <= p_as_of) AS e
    LEFT JOIN LATERAL (
        SELECT cal.id FROM calibrations cal
        WHERE cal.tenant_id = p_tenant
          AND (p.policy ->> 'rater_calibration')::boolean IS TRUE
        ORDER BY cal.create_time DESC, cal.id DESC LIMIT 1) AS c ON true
    CROSS JOIN LATERAL (
        SELECT COALESCE(array_agg(re.rater_id), '{}') AS rater_ids,
               COALESCE(array_agg(re.leniency), '{}') AS leniencies
        FROM rater_effects re
        WHERE re.tenant_id = p_tenant AND re.calibration_id = c.id
          AND re.rater_id = ANY (e.raters)) AS f;
END
$$;
