-- Three contracts of SPEC §6 that need the database.
--
-- 1. A request id (AIP-155) answers only the request it was first used
--    with: create_requests keeps, beside what was created, a digest of each
--    field of that request (path -> digest, request_id itself left out), so
--    a retry is told apart from another request under the same id, and the
--    fields that differ can be named. Rows written before this migration
--    have none and keep answering as they did.
ALTER TABLE create_requests ADD COLUMN request_fields jsonb;

-- 2. Page tokens (AIP-158) are sealed with a key every replica shares: one
--    random key per deployment, made here (gen_random_uuid draws from the
--    server's strong random source), readable by the service, never written
--    by it.
CREATE TABLE page_token_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key       bytea   NOT NULL CHECK (length(key) = 32)
);
INSERT INTO page_token_key (key)
VALUES (sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));
REVOKE ALL ON page_token_key FROM ladder_app;
GRANT SELECT ON page_token_key TO ladder_app;

-- 3. A call about a subject the tenant never recorded is NOT_FOUND: the
--    scoring statement also says whether the subject exists (a stored row,
--    or any evidence at any time), in the same round trip. Otherwise as
--    migration 0015.
DROP FUNCTION ladder_scoring_inputs(text, text, timestamptz, text);
CREATE FUNCTION ladder_scoring_inputs(
    p_tenant text, p_subject text, p_as_of timestamptz, p_lock_timeout text)
RETURNS TABLE (
    framework_revision bigint,
    policy jsonb,
    subject_known boolean,
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
    SELECT t.framework_revision, p.policy,
           s.id IS NOT NULL OR cardinality(e.ids) > 0
               OR EXISTS (SELECT 1 FROM evidence later
                          WHERE later.tenant_id = p_tenant AND later.subject_id = p_subject),
           s.current_role_id,
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
