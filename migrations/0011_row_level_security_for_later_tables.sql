-- The tables created after migration 0007 (tracks, decisions, calibrations,
-- rater_effects) get the same row-level security: enabled, forced, and one
-- policy keyed by ladder.tenant_id that fails closed. Their grants to
-- ladder_app come from 0007's default privileges.
SELECT ladder_isolate_tenant_tables();
