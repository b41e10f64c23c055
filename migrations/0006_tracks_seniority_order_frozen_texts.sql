-- Tracks become part of a tenant's framework; roles get a seniority level;
-- competencies and roles keep the order their framework file lists them in;
-- a published rubric version keeps the competency texts it was published with.

-- An import numbers its items 1, 2, 3, ... in file order (files hold fewer
-- than a million items); an item created through the API takes its number from
-- this sequence, which starts above them, so it sorts after everything imported.
CREATE SEQUENCE framework_positions START WITH 1000000;

CREATE TABLE tracks (
    tenant_id   text        NOT NULL,
    id          text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    position    bigint      NOT NULL DEFAULT nextval('framework_positions'),
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- Tenants with roles from before this migration get the four tracks the
-- roles' old CHECK constraint allowed, worded as in framework/builtin.yaml.
INSERT INTO tracks (tenant_id, id, name, description, position)
SELECT t.tenant_id, b.id, b.name, b.description, b.position
FROM (SELECT DISTINCT tenant_id FROM roles) t
CROSS JOIN (VALUES
    ('individual_contributor', 'Individual contributor',
     'Deeper and wider technical work without reports: Staff and Principal Engineer, Architect, SRE, DevOps and domain Specialist roles.', 1),
    ('management', 'Management',
     'Leading people and teams: Engineering Manager up to Director of Engineering, and the CTO of a small startup.', 2),
    ('product', 'Product and process',
     'Deciding what to build and running how it gets built: Product Manager, Director of Product and Technical Program Manager roles.', 3),
    ('business', 'Business and sales',
     'Working with customers and the market: Solutions Engineer, Sales Engineer, Developer Advocate and the CEO of a small startup.', 4)
) AS b (id, name, description, position);

ALTER TABLE roles DROP CONSTRAINT roles_track_check;
ALTER TABLE roles ADD FOREIGN KEY (tenant_id, track) REFERENCES tracks (tenant_id, id);

ALTER TABLE roles ADD COLUMN seniority integer NOT NULL DEFAULT 0
    CHECK (seniority BETWEEN 0 AND 1000);
-- The built-in framework's levels for the roles it defines.
UPDATE roles SET seniority = b.seniority
FROM (VALUES
    ('senior_engineer', 3), ('staff_engineer', 4), ('principal_engineer', 5),
    ('architect', 4), ('senior_architect', 5), ('senior_sre', 3), ('staff_sre', 4),
    ('senior_devops_engineer', 3), ('staff_devops_engineer', 4),
    ('specialist', 3), ('senior_specialist', 4),
    ('engineering_manager', 3), ('senior_engineering_manager', 4),
    ('director_of_engineering', 5), ('startup_cto', 4),
    ('product_manager', 3), ('senior_product_manager', 4), ('director_of_product', 5),
    ('technical_program_manager', 3), ('senior_technical_program_manager', 4),
    ('solutions_engineer', 3), ('sales_engineer', 3), ('developer_advocate', 3),
    ('startup_ceo', 4)
) AS b (id, seniority)
WHERE roles.id = b.id;

ALTER TABLE roles ADD COLUMN position bigint NOT NULL DEFAULT nextval('framework_positions');
ALTER TABLE competencies ADD COLUMN position bigint NOT NULL DEFAULT nextval('framework_positions');

-- `ladder framework import --prune` retires what a file no longer contains but
-- published rubric versions still cite (they are immutable): a retired role or
-- competency stays readable by id but is in no catalog, export or new
-- reference. Importing it again restores it.
ALTER TABLE roles ADD COLUMN retire_time timestamptz;
ALTER TABLE competencies ADD COLUMN retire_time timestamptz;

-- The competency's name and level descriptors as they were when the version
-- was published: an assessment cites exactly the words it was judged against.
-- Filled while the version is still a draft, in the publishing transaction;
-- NULL for drafts and for versions published before this migration.
ALTER TABLE rubric_competencies ADD COLUMN published_text jsonb;

-- Tracks are in every catalog (track fit lists them).
CREATE CONSTRAINT TRIGGER tracks_bump_framework_revision
    AFTER INSERT OR UPDATE OR DELETE ON tracks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ladder_bump_framework_revision();
