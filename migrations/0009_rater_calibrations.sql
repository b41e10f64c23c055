-- Rater calibration runs (SPEC §10): immutable snapshots of each rater's
-- estimated leniency, and the calibration an assessment was scored with.

CREATE TABLE calibrations (
    tenant_id            text             NOT NULL,
    id                   uuid             NOT NULL,
    -- The window: evidence with as_of - window_days < observed_at <= as_of.
    as_of                timestamptz      NOT NULL,
    window_days          integer          NOT NULL CHECK (window_days BETWEEN 1 AND 36500),
    -- λ, in units of rating weight.
    rater_prior_strength double precision NOT NULL
        CHECK (rater_prior_strength > 0 AND rater_prior_strength <= 1000000),
    ratings              bigint           NOT NULL CHECK (ratings >= 0),
    subjects             bigint           NOT NULL CHECK (subjects >= 0),
    cells                bigint           NOT NULL CHECK (cells >= 0),
    raters               bigint           NOT NULL CHECK (raters >= 0),
    -- s, the weighted root mean square residual.
    residual_scale       double precision NOT NULL,
    -- A proven bound on max_r |b_r - b*_r|.
    error_bound          double precision NOT NULL,
    create_time          timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- Newest first: the latest calibration, which scoring uses, and listings.
CREATE INDEX calibrations_by_time ON calibrations (tenant_id, create_time DESC, id DESC);

CREATE TABLE rater_effects (
    tenant_id      text             NOT NULL,
    calibration_id uuid             NOT NULL,
    rater_id       text             NOT NULL,
    -- b_r, k_r, ω_r, overlap_r and se_r of SPEC §10.
    leniency       double precision NOT NULL,
    ratings        bigint           NOT NULL CHECK (ratings > 0),
    weight         double precision NOT NULL,
    overlap        bigint           NOT NULL CHECK (overlap >= 0),
    standard_error double precision NOT NULL,
    PRIMARY KEY (tenant_id, calibration_id, rater_id),
    FOREIGN KEY (tenant_id, calibration_id) REFERENCES calibrations (tenant_id, id)
);

-- ListRaterEffects' default order: largest |b_r| first.
CREATE INDEX rater_effects_by_magnitude
    ON rater_effects (tenant_id, calibration_id, abs(leniency) DESC, rater_id);

-- A calibration is a snapshot that assessments cite: neither it nor its
-- effects ever change or go away. (Raters are not subjects: erasing a
-- subject's data never reaches them.)
CREATE FUNCTION ladder_refuse_calibration_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is an immutable calibration snapshot: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER calibrations_immutable
    BEFORE UPDATE OR DELETE ON calibrations
    FOR EACH ROW EXECUTE FUNCTION ladder_refuse_calibration_change();
CREATE TRIGGER calibrations_not_truncated
    BEFORE TRUNCATE ON calibrations
    FOR EACH STATEMENT EXECUTE FUNCTION ladder_refuse_calibration_change();
CREATE TRIGGER rater_effects_immutable
    BEFORE UPDATE OR DELETE ON rater_effects
    FOR EACH ROW EXECUTE FUNCTION ladder_refuse_calibration_change();
CREATE TRIGGER rater_effects_not_truncated
    BEFORE TRUNCATE ON rater_effects
    FOR EACH STATEMENT EXECUTE FUNCTION ladder_refuse_calibration_change();

-- The calibration an assessment's levels were adjusted with; NULL when none.
ALTER TABLE assessments ADD COLUMN calibration_id uuid;
ALTER TABLE assessments ADD FOREIGN KEY (tenant_id, calibration_id)
    REFERENCES calibrations (tenant_id, id);
