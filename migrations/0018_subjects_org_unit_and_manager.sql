-- A subject's place in the organisation (SPEC §3): its org unit, a
-- slash-separated path of at most 8 parts (`engineering/platform/payments`),
-- and its manager, another subject's id. The server validates both
-- (README, "Subjects and teams"); the checks here only keep a subject from being
-- its own manager and bound the texts.
--
-- subjects already has row-level security (migration 0007) and its grants
-- to ladder_app are table-wide, so the new columns are covered by both.
ALTER TABLE subjects
    ADD COLUMN org_unit   text CHECK (char_length(org_unit) BETWEEN 1 AND 519),
    ADD COLUMN manager_id text CHECK (char_length(manager_id) BETWEEN 1 AND 256),
    ADD CONSTRAINT subjects_manager_is_someone_else CHECK (manager_id <> id);

-- ListSubjects (and talent pools after it) select a scope's subjects: an org
-- unit and everything below it, read as a byte range of this index
-- (text_pattern_ops compares bytes, whatever the database's collation), and a
-- manager's direct reports, which the walk down a manager's subtree repeats
-- level by level. subjects holds one row per person, so building these
-- without CONCURRENTLY blocks its writes only briefly.
CREATE INDEX subjects_by_org_unit ON subjects (tenant_id, org_unit text_pattern_ops);
CREATE INDEX subjects_by_manager ON subjects (tenant_id, manager_id);
