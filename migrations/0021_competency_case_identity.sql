-- The CASE identity of a competency imported from a CASE package (SPEC §9):
-- the identifier, URI and human coding scheme of its item, exported back
-- unchanged, matched as xAPI statement objects, and used by the next import
-- to find the competency an item became whatever its title is by then. The
-- server bounds them to 1,024 characters; the checks here keep that.
--
-- competencies already has row-level security (migration 0007) and its
-- grants to ladder_app are table-wide, so the new columns are covered by both.
ALTER TABLE competencies
    ADD COLUMN case_identifier          text CHECK (char_length(case_identifier) BETWEEN 1 AND 1024),
    ADD COLUMN case_uri                 text CHECK (char_length(case_uri) BETWEEN 1 AND 1024),
    ADD COLUMN case_human_coding_scheme text CHECK (char_length(case_human_coding_scheme) BETWEEN 1 AND 1024);

-- One competency per item: the import matches identifiers without regard to
-- case, and so does this index. competencies holds one row per skill of a
-- framework, so building it without CONCURRENTLY is brief.
CREATE UNIQUE INDEX competencies_by_case_identifier
    ON competencies (tenant_id, lower(case_identifier))
    WHERE case_identifier IS NOT NULL;
