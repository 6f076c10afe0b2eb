-- flagctl schema, version 25: the functions have one current definition.
--
-- Until now a function changed by being restated in full in a new migration (audit_chain and
-- audit_digest four times over), so its current body was whichever migration came last.
-- Now flagctl/sql/routines/*.sql hold the current definition of every function, and
-- `flagctl db init` re-applies them, after the migrations and in the same transaction,
-- whenever one of them changed or a migration was applied. This table records the checksum
-- of each file as last applied; `db status` compares them with the files of the installed
-- flagctl. (flagctl/sql/README.md: what goes in a migration, what in a routines file.)
CREATE TABLE flagctl.schema_routines (
    name       text        PRIMARY KEY,  -- the file, e.g. 10_audit
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON flagctl.schema_routines FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT SELECT ON flagctl.schema_routines TO flagctl_viewer;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT ON flagctl.schema_routines TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on schema_routines not given (%)', SQLERRM;
END
$$;
