-- UpdateEvidence (a correction, AIP-134) is guarded by an etag (AIP-154)
-- made from this revision, as every other editable row is. A constant
-- default adds the column without rewriting the table.
ALTER TABLE evidence ADD COLUMN revision bigint NOT NULL DEFAULT 1;
