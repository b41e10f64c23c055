-- Assessment bands are stored like every other enum, in snake case
-- (`not_yet`), no longer in the Rust spelling (`NotYet`).
UPDATE assessments SET band = CASE band
        WHEN 'InsufficientEvidence' THEN 'insufficient_evidence'
        WHEN 'NotYet' THEN 'not_yet'
        WHEN 'Developing' THEN 'developing'
        WHEN 'Ready' THEN 'ready'
        ELSE band
    END
WHERE band IN ('InsufficientEvidence', 'NotYet', 'Developing', 'Ready');

-- CreateAssessment's request ids are kept in create_requests like every
-- other create's; those recorded before are carried over so a late retry
-- still finds its assessment.
INSERT INTO create_requests (tenant_id, method, request_id, resource_id)
SELECT tenant_id, 'CreateAssessment', request_id, id::text
FROM assessments
WHERE request_id IS NOT NULL
ON CONFLICT DO NOTHING;
