-- Every write appends one row to audit_log in its own transaction: who
-- (the token's sub), the tenant, the method, what it wrote (for a batch:
-- how many, the first and the last), the call's request id, when, and the
-- outcome. A subject is never named in clear there: its id appears only as
-- a keyed hash (ladder_subject_hash), so erasing a subject leaves nothing
-- in the log that names it.
ALTER TABLE audit_log RENAME COLUMN action TO method;
ALTER TABLE audit_log
    ADD COLUMN resource_count integer NOT NULL DEFAULT 1,
    ADD COLUMN last_resource text NOT NULL DEFAULT '',
    ADD COLUMN request_id text NOT NULL DEFAULT '',
    ADD COLUMN outcome text NOT NULL DEFAULT 'Ok';

CREATE INDEX audit_log_by_time ON audit_log (tenant_id, at DESC, id DESC);

-- Append-only for everyone but a superuser who disables the trigger: the
-- application role has no UPDATE or DELETE on it (migration 0007), and the
-- owner is refused too.
CREATE FUNCTION ladder_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ladder_audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ladder_audit_log_append_only();

-- The deployment's key for hashing subject ids (HMAC-SHA256), made here
-- from the server's strong random source, once per database. It is kept as
-- the two padded halves HMAC uses, so that the hash is computed in SQL with
-- core functions only. Readable by the application role, never writable.
CREATE TABLE subject_hash_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    inner_pad bytea   NOT NULL CHECK (length(inner_pad) = 64),
    outer_pad bytea   NOT NULL CHECK (length(outer_pad) = 64)
);

DO $$
DECLARE
    key bytea := sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8'))
                 || '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    inner_pad bytea := key;
    outer_pad bytea := key;
BEGIN
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(key, i) # 54);  -- 0x36
        outer_pad := set_byte(outer_pad, i, get_byte(key, i) # 92);  -- 0x5c
    END LOOP;
    INSERT INTO subject_hash_key (inner_pad, outer_pad) VALUES (inner_pad, outer_pad);
END;
$$;

REVOKE ALL ON subject_hash_key FROM ladder_app;
GRANT SELECT ON subject_hash_key TO ladder_app;

-- HMAC-SHA256 of a subject id under the deployment's key, in hexadecimal.
CREATE FUNCTION ladder_subject_hash(subject_id text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT encode(sha256(outer_pad || sha256(inner_pad || convert_to(subject_id, 'UTF8'))), 'hex')
    FROM subject_hash_key
$$;
