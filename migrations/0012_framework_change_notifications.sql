-- Servers also keep each tenant's roles in memory for reads that ask the
-- database nothing (GetRole; storage::role_cache). Those reads cannot check
-- the framework revision, so a framework change now also tells every server
-- when it commits: a notification on channel `ladder_framework` whose payload
-- is the tenant id (never subject data). PostgreSQL folds the notifications of
-- one transaction with the same payload into one. The function is otherwise
-- the one of migration 0003.
CREATE OR REPLACE FUNCTION ladder_bump_framework_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (tenant_id, framework_loaded_at, framework_revision)
        VALUES (COALESCE(NEW.tenant_id, OLD.tenant_id), now(), nextval('framework_revisions'))
        ON CONFLICT (tenant_id) DO UPDATE
            SET framework_revision = EXCLUDED.framework_revision;
    PERFORM pg_notify('ladder_framework', COALESCE(NEW.tenant_id, OLD.tenant_id));
    RETURN NULL;
END;
$$;
