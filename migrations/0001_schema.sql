-- Ladder schema: every table's primary key leads with tenant_id and every
-- foreign key includes it, so the schema can be distributed by tenant (Citus)
-- without changes.

CREATE TABLE tenants (
    tenant_id      text        NOT NULL PRIMARY KEY,
    -- Set once the built-in framework has been loaded into the tenant.
    framework_loaded_at timestamptz,
    create_time    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE competencies (
    tenant_id   text        NOT NULL,
    id          text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    -- Five level descriptors: [{level, title, description, behaviours[]}].
    levels      jsonb       NOT NULL,
    revision    bigint      NOT NULL DEFAULT 1,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE roles (
    tenant_id   text        NOT NULL,
    id          text        NOT NULL,
    name        text        NOT NULL,
    track       text        NOT NULL CHECK (track IN ('individual_contributor', 'management', 'product', 'business')),
    description text        NOT NULL DEFAULT '',
    revision    bigint      NOT NULL DEFAULT 1,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE role_transitions (
    tenant_id    text NOT NULL,
    from_role_id text NOT NULL,
    to_role_id   text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('promotion', 'lateral')),
    position     integer NOT NULL,
    PRIMARY KEY (tenant_id, from_role_id, to_role_id),
    FOREIGN KEY (tenant_id, from_role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_role_id) REFERENCES roles (tenant_id, id)
);

CREATE TABLE rubric_versions (
    tenant_id    text        NOT NULL,
    role_id      text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    state        text        NOT NULL CHECK (state IN ('draft', 'published', 'superseded', 'retired')),
    revision     bigint      NOT NULL DEFAULT 1,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    publish_time timestamptz,
    PRIMARY KEY (tenant_id, role_id, version),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id)
);

-- At most one published (current) version per role.
CREATE UNIQUE INDEX rubric_versions_one_published
    ON rubric_versions (tenant_id, role_id) WHERE state = 'published';

CREATE TABLE rubric_competencies (
    tenant_id      text             NOT NULL,
    role_id        text             NOT NULL,
    version        integer          NOT NULL,
    competency_id  text             NOT NULL,
    position       integer          NOT NULL,
    expected_level smallint         NOT NULL CHECK (expected_level BETWEEN 1 AND 5),
    weight         double precision NOT NULL CHECK (weight > 0 AND weight < 'Infinity'),
    critical       boolean          NOT NULL DEFAULT false,
    development_actions jsonb       NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, role_id, version, competency_id),
    FOREIGN KEY (tenant_id, role_id, version) REFERENCES rubric_versions (tenant_id, role_id, version) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, competency_id) REFERENCES competencies (tenant_id, id)
);

-- A published version is immutable forever: the database refuses any change
-- to it except moving its state forward (published -> superseded -> retired).
CREATE FUNCTION ladder_guard_rubric_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'rubric % version % is %, not a draft: it is immutable', OLD.role_id, OLD.version, OLD.state
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.state = 'draft' THEN
        RETURN NEW;
    END IF;
    IF NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
        OR NEW.role_id IS DISTINCT FROM OLD.role_id
        OR NEW.version IS DISTINCT FROM OLD.version
        OR NEW.create_time IS DISTINCT FROM OLD.create_time
        OR NEW.publish_time IS DISTINCT FROM OLD.publish_time
        OR NOT (
            (OLD.state = 'published' AND NEW.state IN ('published', 'superseded', 'retired'))
            OR (OLD.state = 'superseded' AND NEW.state IN ('superseded', 'retired'))
            OR (OLD.state = 'retired' AND NEW.state = 'retired' AND NEW.revision = OLD.revision)
        )
    THEN
        RAISE EXCEPTION 'rubric % version % is %: it is immutable', OLD.role_id, OLD.version, OLD.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER rubric_versions_immutable
    BEFORE UPDATE OR DELETE ON rubric_versions
    FOR EACH ROW EXECUTE FUNCTION ladder_guard_rubric_version();

-- The expectations of a non-draft version cannot be added, changed or removed.
CREATE FUNCTION ladder_guard_rubric_competency() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_ rubric_competencies;
    parent_state text;
BEGIN
    IF TG_OP = 'DELETE' THEN row_ := OLD; ELSE row_ := NEW; END IF;
    SELECT state INTO parent_state FROM rubric_versions
        WHERE tenant_id = row_.tenant_id AND role_id = row_.role_id AND version = row_.version;
    -- A cascade from deleting a draft finds no parent row any more.
    IF parent_state IS NOT NULL AND parent_state <> 'draft' THEN
        RAISE EXCEPTION 'rubric % version % is %: its competencies are immutable', row_.role_id, row_.version, parent_state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.tenant_id, OLD.role_id, OLD.version) IS DISTINCT FROM (NEW.tenant_id, NEW.role_id, NEW.version) THEN
        RAISE EXCEPTION 'rubric competencies cannot move between versions'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER rubric_competencies_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON rubric_competencies
    FOR EACH ROW EXECUTE FUNCTION ladder_guard_rubric_competency();

CREATE TABLE subjects (
    tenant_id       text        NOT NULL,
    id              text        NOT NULL,
    current_role_id text,
    revision        bigint      NOT NULL DEFAULT 1,
    update_time     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, current_role_id) REFERENCES roles (tenant_id, id)
);

CREATE TABLE evidence (
    tenant_id     text             NOT NULL,
    id            uuid             NOT NULL,
    subject_id    text             NOT NULL,
    competency_id text             NOT NULL,
    level         double precision NOT NULL CHECK (level >= 1 AND level <= 5),
    source        text             NOT NULL CHECK (source IN ('self', 'peer', 'manager', 'direct_report', 'artifact', 'calibration')),
    rater_id      text             NOT NULL DEFAULT '',
    observed_at   timestamptz      NOT NULL,
    confidence    double precision NOT NULL CHECK (confidence > 0 AND confidence <= 1),
    summary       text             NOT NULL DEFAULT '',
    link          text             NOT NULL DEFAULT '',
    source_system text             NOT NULL,
    external_id   text             NOT NULL,
    create_time   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source_system, external_id),
    FOREIGN KEY (tenant_id, competency_id) REFERENCES competencies (tenant_id, id)
);

CREATE INDEX evidence_by_subject ON evidence (tenant_id, subject_id, observed_at, id);

CREATE TABLE scoring_policies (
    tenant_id   text        NOT NULL PRIMARY KEY,
    policy      jsonb       NOT NULL,
    revision    bigint      NOT NULL DEFAULT 1,
    update_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assessments (
    tenant_id      text             NOT NULL,
    id             uuid             NOT NULL,
    subject_id     text             NOT NULL,
    role_id        text             NOT NULL,
    rubric_version integer          NOT NULL,
    as_of          timestamptz      NOT NULL,
    -- The policy and every number of SPEC §4, as computed: a snapshot that
    -- later evidence or policy changes never alter.
    policy         jsonb            NOT NULL,
    result         jsonb            NOT NULL,
    readiness      double precision NOT NULL,
    coverage       double precision NOT NULL,
    band           text             NOT NULL,
    request_id     text,
    create_time    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id, rubric_version) REFERENCES rubric_versions (tenant_id, role_id, version)
);

CREATE INDEX assessments_by_subject ON assessments (tenant_id, subject_id, create_time DESC, id DESC);
CREATE UNIQUE INDEX assessments_request_id ON assessments (tenant_id, request_id) WHERE request_id IS NOT NULL;

-- Creates that carry a request_id remember what they created, so a retry
-- returns the same resource and writes nothing twice.
CREATE TABLE create_requests (
    tenant_id   text        NOT NULL,
    method      text        NOT NULL,
    request_id  text        NOT NULL,
    resource_id text        NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, method, request_id)
);

-- Who wrote what, when.
CREATE TABLE audit_log (
    tenant_id   text        NOT NULL,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    resource    text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
