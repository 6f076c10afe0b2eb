-- flagctl schema, version 9: a global kill holds the narrower overrides too.
--
-- A flag set on at workspace:42 stayed on there under a global kill, because the kill
-- wrote only the global row. A global kill now also writes its values into every scoped
-- override of its flags, and records here what each of those overrides was before any
-- kill held it, so that the release restores them exactly:
--   {flag: {scope: {"prior": value | null, "applied": value}}}
-- ("prior": null marks an override that a scoped kill created; it is left to that kill).
ALTER TABLE flagctl.engaged_switch ADD COLUMN below jsonb NOT NULL DEFAULT '{}';
