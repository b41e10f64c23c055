-- The tables created after migration 0007 (tracks, decisions, calibrations,
-- rater_effects, and any later one with a tenant_id) get the same row-level
-- security: enabled, forced, and one policy keyed by ladder.tenant_id that
-- fails closed. Their grants to ladder_app come from 0007's default
-- privileges.
DO $$
DECLARE
    tenant_table regclass;
BEGIN
    FOR tenant_table IN
        SELECT c.oid::regclass
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE c.relkind IN ('r', 'p')
          AND c.relnamespace = current_schema()::regnamespace
          AND a.attname = 'tenant_id'
          AND NOT a.attisdropped
          AND NOT c.relrowsecurity
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %s '
            'USING (tenant_id = NULLIF(current_setting(''ladder.tenant_id'', true), '''')) '
            'WITH CHECK (tenant_id = NULLIF(current_setting(''ladder.tenant_id'', true), ''''))',
            tenant_table);
    END LOOP;
END;
$$;
