-- Human decision records (SPEC §11): what a person decided on an assessment,
-- by whom and why. Append-only: a later decision on the same assessment
-- supersedes an earlier one, which stays as it was written. The only way a
-- record leaves is the erasure of its subject (or of its assessment, which
-- takes its decisions with it).

CREATE TABLE decisions (
    tenant_id     text        NOT NULL,
    id            uuid        NOT NULL,
    assessment_id uuid        NOT NULL,
    -- Copied from the assessment so a record reads, lists and is erased
    -- without it.
    subject_id    text        NOT NULL,
    role_id       text        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('advance', 'hold', 'defer')),
    band          text        NOT NULL CHECK (band IN ('insufficient_evidence', 'not_yet', 'developing', 'ready')),
    decided_by    text        NOT NULL,
    rationale     text        NOT NULL,
    -- [{competency_id, level, assessed_estimate, reason}], in request order.
    overrides     jsonb       NOT NULL DEFAULT '[]',
    decided_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, assessment_id) REFERENCES assessments (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX decisions_by_subject ON decisions (tenant_id, subject_id, decided_at DESC, id DESC);
CREATE INDEX decisions_by_role ON decisions (tenant_id, role_id, decided_at DESC, id DESC);
CREATE INDEX decisions_by_assessment ON decisions (tenant_id, assessment_id);

-- A record is never edited. DELETE stays allowed: erasing a subject deletes
-- their decisions (`DELETE FROM decisions WHERE tenant_id = $1 AND
-- subject_id = $2`, or through their assessments).
CREATE FUNCTION ladder_refuse_decision_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'decision % is a record and cannot be changed; record a new decision instead', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER decisions_append_only
    BEFORE UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION ladder_refuse_decision_update();
