-- no-transaction
-- The scoring statement (storage::scoring_inputs) reads a subject's evidence
-- along the index (tenant_id, subject_id, observed_at, id). With the other
-- columns it reads included, PostgreSQL answers it from the index alone (an
-- index-only scan): a few index pages for a subject of 50 items instead of
-- one heap page per item, which is most of what an assessment costs the
-- database once the table outgrows memory (docs/benchmarks.md). The key is
-- the old index's, so the evidence listing keeps its order and bounds;
-- migration 0014 drops the old index.
--
-- Built CONCURRENTLY, so ingest goes on while it builds; that cannot run in
-- a transaction, hence a migration of its own with this one statement. If
-- the build is interrupted, PostgreSQL leaves an invalid index of this name
-- and the migration fails again: drop it and migrate again
-- (docs/operations.md, "A bad migration").
CREATE INDEX CONCURRENTLY evidence_for_scoring ON evidence (tenant_id, subject_id, observed_at, id)
    INCLUDE (competency_id, level, source, confidence, rater_id);
