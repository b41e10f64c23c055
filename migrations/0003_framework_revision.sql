-- A number per tenant that changes whenever what recommendations and
-- assessments read of the framework changes: roles, their transitions, and
-- which rubric version is published. (The content of a non-draft version
-- never changes, see ladder_guard_rubric_competency, and drafts are never
-- scored through the catalog.) Servers keep each tenant's catalog in memory
-- and compare this number, read in the same statement as the evidence,
-- before using it, so every replica sees a change as soon as it is committed.
--
-- Values come from one sequence, so a number is never reused, not even for a
-- tenant whose row was deleted and created again. Row triggers do not fire on
-- TRUNCATE or on a restore with --disable-triggers: restart the servers after
-- either.
ALTER TABLE tenants ADD COLUMN framework_revision bigint NOT NULL DEFAULT 0;

CREATE SEQUENCE framework_revisions;

-- Tenants whose framework was written before this migration get their row.
INSERT INTO tenants (tenant_id, framework_loaded_at)
    SELECT DISTINCT tenant_id, now() FROM roles
    ON CONFLICT DO NOTHING;

-- The tenant row is created here if a framework row arrives first, which
-- marks the tenant as registered (no built-in framework loaded behind it).
CREATE FUNCTION ladder_bump_framework_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (tenant_id, framework_loaded_at, framework_revision)
        VALUES (COALESCE(NEW.tenant_id, OLD.tenant_id), now(), nextval('framework_revisions'))
        ON CONFLICT (tenant_id) DO UPDATE
            SET framework_revision = EXCLUDED.framework_revision;
    RETURN NULL;
END;
$$;

-- Deferred to commit: by then the transaction holds every row lock it takes,
-- so two framework writes of different roles of one tenant cannot deadlock
-- through the tenant row (one waits for a role the other holds, then both
-- commit).
CREATE CONSTRAINT TRIGGER roles_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON roles
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();

CREATE CONSTRAINT TRIGGER role_transitions_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON role_transitions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();

-- Only a version that is or was published is in a catalog; draft edits and
-- deletions (only drafts can be deleted) leave every cache as it is.
CREATE CONSTRAINT TRIGGER rubric_versions_published_bump_framework_revision
    AFTER INSERT ON rubric_versions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.state = 'published')
    EXECUTE FUNCTION ladder_bump_framework_revision();

CREATE CONSTRAINT TRIGGER rubric_versions_state_bump_framework_revision
    AFTER UPDATE ON rubric_versions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.state = 'published' OR NEW.state = 'published')
    EXECUTE FUNCTION ladder_bump_framework_revision();
