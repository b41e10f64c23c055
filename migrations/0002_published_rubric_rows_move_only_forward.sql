-- A published (or superseded, or retired) rubric version row may change only
-- by moving its state forward; an UPDATE that leaves the state as it is (a
-- bare revision or update_time bump) is refused as well.
CREATE OR REPLACE FUNCTION ladder_guard_rubric_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'rubric % version % is %, not a draft: it is immutable', OLD.role_id, OLD.version, OLD.state
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.state = 'draft' THEN
        RETURN NEW;
    END IF;
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.role_id IS DISTINCT FROM OLD.role_id
        OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.create_time IS DISTINCT FROM OLD.create_time
        OR NEW.publish_time IS DISTINCT FROM OLD.publish_time
        OR NOT (
            (OLD.state = 'published' AND NEW.state IN ('superseded', 'retired'))
            OR (OLD.state = 'superseded' AND NEW.state = 'retired')
        )
    THEN
        RAISE EXCEPTION 'rubric % version % is %: it is immutable', OLD.role_id, OLD.version, OLD.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
