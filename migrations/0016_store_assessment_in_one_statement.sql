-- A stored assessment and its audit row in one statement, with its tenant:
-- sets `ladder.tenant_id` (compared with by the row-level security policies
-- of migration 0007) and `lock_timeout` for the statement's own transaction
-- when called alone, or for the rest of the caller's transaction, then
-- inserts both rows. Called alone, nothing it sets outlives the call (see
-- 0015); both rows commit together or not at all.
--
-- PL/pgSQL, so that the settings are made before the insert runs; SECURITY
-- INVOKER, so that it writes as the caller, under row-level security.
CREATE FUNCTION ladder_store_assessment(
    p_tenant text, p_lock_timeout text,
    p_id uuid, p_subject text, p_role text, p_rubric_version integer,
    p_as_of timestamptz, p_policy json, p_result json,
    p_readiness double precision, p_coverage double precision, p_band text,
    p_request_id text, p_create_time timestamptz, p_calibration_id uuid,
    p_actor text, p_method text, p_call_request_id text, p_outcome text)
RETURNS void
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('ladder.tenant_id', p_tenant, true),
            set_config('lock_timeout', p_lock_timeout, true);
    WITH audited AS (
        INSERT INTO audit_log (tenant_id, actor, method, resource, request_id, outcome)
        VALUES (p_tenant, p_actor, p_method, 'assessments/' || p_id::text,
                p_call_request_id, p_outcome))
    INSERT INTO assessments (tenant_id, id, subject_id, role_id, rubric_version, as_of,
        policy, result, readiness, coverage, band, request_id, create_time, calibration_id)
    VALUES (p_tenant, p_id, p_subject, p_role, p_rubric_version, p_as_of,
        p_policy, p_result, p_readiness, p_coverage, p_band, p_request_id, p_create_time,
        p_calibration_id);
END
$$;
