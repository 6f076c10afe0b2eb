-- flagctl schema, version 27: freezes and exemptions are written only as declared changes.
--
-- An ops member held INSERT and UPDATE on flagctl.freeze, a release member INSERT, UPDATE and
-- DELETE on flagctl.exemption: in psql either could write a row undeclared (recorded only as
-- sql.*), under an actor of their choosing (the statements took it from a session setting),
-- rewrite an existing freeze's reason or lift its end, or grant a scope an `allow` without
-- flagctl ever having been asked. Now a guard (its body in routines/40_guard.sql) lets a
-- member of a flagctl role write them only inside a change declared through begin_change for
-- that very action (freeze.set / freeze.clear, exempt), takes who acts and why from the
-- declaration, lets a freeze be only set or cleared (never rewritten or deleted), and leaves
-- the application roles (which hold no privilege here) and the owner as they were.

CREATE FUNCTION flagctl.guard_declared_write() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'flagctl: guard_declared_write is defined by the routines (flagctl db init)';
END
$$;

CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON flagctl.freeze
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_declared_write();
CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON flagctl.exemption
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_declared_write();
