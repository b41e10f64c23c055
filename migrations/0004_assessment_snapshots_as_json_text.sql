-- Assessment snapshots are written on every CreateAssessment and read back
-- whole, never searched inside: keep them as the JSON text the server wrote
-- (no conversion to jsonb, whose numbers and key order cost time to build).
-- A snapshot of a built-in rubric with 50 evidence items takes 5-9 kB of
-- text: rows are kept whole in the table up to 8 kB (not cut into a TOAST
-- table at 2 kB), and what must be compressed to get there is compressed with
-- lz4, several times cheaper than the default pglz, where the server has it.

-- Changing the type rewrites the table under an exclusive lock; rather fail
-- (and be run again) than queue every assessment call behind a long wait.
SET LOCAL lock_timeout = '10s';

ALTER TABLE assessments
    ALTER COLUMN policy TYPE json USING policy::json,
    ALTER COLUMN result TYPE json USING result::json;

ALTER TABLE assessments SET (toast_tuple_target = 8160);

DO $$
BEGIN
    ALTER TABLE assessments ALTER COLUMN result SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not built into this server; snapshots keep the default compression';
END;
$$;
