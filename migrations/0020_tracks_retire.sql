-- A prune retires a track the file no longer has when a role it retires
-- still belongs to (the role stays readable by id for the people who hold
-- it, and its track with it), as it does roles and competencies: a retired
-- track is in no catalog, list or export, and importing it again restores it.
ALTER TABLE tracks ADD COLUMN retire_time timestamptz;
