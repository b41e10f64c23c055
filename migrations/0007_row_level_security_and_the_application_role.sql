-- Tenant isolation in the database (SPEC §8). Every table with a tenant_id
-- gets row-level security, enabled and forced (so that it binds the tables'
-- owner too, unless that role has BYPASSRLS), with one policy for reading
-- and writing: a row belongs to the tenant named by the setting
-- ladder.tenant_id. Unset, the setting reads as NULL, and cleared as '':
-- either matches no row, so a statement run without a tenant sees nothing
-- and can write nothing.
--
-- The service connects as the application role ladder_app (or a role that
-- is a member of it): no superuser, owns nothing, no BYPASSRLS, and only the
-- privileges granted here. Migrations run as the owner of the tables. The
-- role is created here when the migrating role may create roles; otherwise
-- an administrator creates it first (docs/security.md).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ladder_app') THEN
        CREATE ROLE ladder_app NOLOGIN;
    END IF;
END;
$$;

-- One function, so that later migrations isolate the tables they add the
-- same way (0011 calls it again): every table with a tenant_id that has no
-- row-level security yet gets it.
CREATE FUNCTION ladder_isolate_tenant_tables() RETURNS void
LANGUAGE plpgsql AS $fn$
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
$fn$;
REVOKE ALL ON FUNCTION ladder_isolate_tenant_tables() FROM PUBLIC;

SELECT ladder_isolate_tenant_tables();

-- What the application role may do: read and write the tenant tables, use
-- their sequences; nothing on the migrations' bookkeeping. Tables that later
-- migrations create get the same grants by default.
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO ladder_app', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO ladder_app', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO ladder_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ladder_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO ladder_app', current_schema());
    -- Before PostgreSQL 15 every role may create tables in public; the
    -- application role must not (it would own them). Only the schema's
    -- owner may revoke that; another owner is told to.
    BEGIN
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot revoke CREATE on schema % from PUBLIC: ask its owner to', current_schema();
    END;
END;
$$;

REVOKE ALL ON _sqlx_migrations FROM ladder_app;

-- The audit log is append-only for the service (migration 0010 adds the
-- trigger that holds for everyone else).
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ladder_app;
