-- Migration 0013's index has the same key and more: this one is no longer
-- used.
DROP INDEX evidence_by_subject;
