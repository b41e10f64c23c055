-- A counter per tenant that moves whenever what recommendations and
-- assessments read of the framework changes: roles, their transitions, and
-- the state of rubric versions. (The content of a non-draft rubric version
-- never changes, see ladder_guard_rubric_competency, and drafts are never
-- scored.) Servers keep each tenant's catalog in memory and compare this
-- counter, read in the same statement as the evidence, before using it, so
-- every replica sees a change as soon as it is committed.
ALTER TABLE tenants ADD COLUMN framework_revision bigint NOT NULL DEFAULT 0;

-- Tenants whose framework was written before this migration get their row.
INSERT INTO tenants (tenant_id, framework_loaded_at)
    SELECT DISTINCT tenant_id, now() FROM roles
    ON CONFLICT DO NOTHING;

-- The row lock it takes serialises a tenant's framework changes, which are
-- rare administrative writes; the tenant row is also created here if a
-- framework row arrives first, which marks the tenant as registered.
CREATE FUNCTION ladder_bump_framework_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (tenant_id, framework_loaded_at, framework_revision)
        VALUES (COALESCE(NEW.tenant_id, OLD.tenant_id), now(), 1)
        ON CONFLICT (tenant_id) DO UPDATE
            SET framework_revision = tenants.framework_revision + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER roles_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();

CREATE TRIGGER role_transitions_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON role_transitions
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();

CREATE TRIGGER rubric_versions_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON rubric_versions
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();
