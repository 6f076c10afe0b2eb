"""flagctl's database roles: what each may do is enforced by PostgreSQL (schema version 14);
this module grants and revokes them, and names the one an action needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError

if TYPE_CHECKING:
    import psycopg

ROLES = {
    "viewer": "read flagctl's tables: status, audit log, drills, freezes",
    "release": "stage moves, set, profile apply, restore, rollback, exemptions, ladder drills",
    "security": "kill and release (the emergency path), kill drills",
    "ops": "freezes",
    "admin": "all of the above, granting them, and the tokens of flagctl serve",
}


def role_for(action: str) -> str:
    """The flagctl role an audited action needs."""
    base = action.removeprefix("drill.")
    if base in ("kill", "release"):
        return "security"
    if base.startswith("freeze"):
        return "ops"
    if base.startswith("tokens."):
        return "admin"
    return "release"


def _role(name: str) -> str:
    if name not in ROLES:
        raise UsageError(
            f"no flagctl role {name!r}", "roles: " + "; ".join(f"{r} ({what})" for r, what in ROLES.items())
        )
    return f"flagctl_{name}"


def grant(conn: psycopg.Connection[Any], role: str, user: str, revoke: bool = False) -> bool:
    """Grant (or revoke) a flagctl role to a database user; whether anything changed."""
    from psycopg import sql

    group = _role(role)
    exists = conn.execute(
        "SELECT to_regrole(%s) IS NOT NULL, to_regrole(%s) IS NOT NULL", (group, user)
    ).fetchone()
    assert exists is not None
    if not exists[0]:
        raise UsageError(
            f"role {group} does not exist", "run flagctl db init as a role that may create roles"
        )
    if not exists[1]:
        raise UsageError(f"database user {user!r} does not exist", "create it first: CREATE ROLE … LOGIN")
    member = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = to_regrole(%s) AND member = to_regrole(%s))",
        (group, user),
    ).fetchone()
    if bool(member and member[0]) != revoke:
        return False
    statement = "REVOKE {} FROM {}" if revoke else "GRANT {} TO {}"
    with conn.transaction():
        conn.execute(sql.SQL(statement).format(sql.Identifier(group), sql.Identifier(user)))
    return True


# A bound table: flagctl's roles only read it (viewers, and the roles holding the viewer
# role); every write of a flag's row is flagctl's functions' (flagctl.kill, flagctl.release,
# flagctl.write_bound), which run as flagctl's owner: that owner needs SELECT, UPDATE.
GRANT_BOUND = """
DO $$
DECLARE
    owner regrole := (SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'flagctl');
BEGIN
    EXECUTE format('GRANT SELECT, UPDATE ON %s TO %s', {table}, owner);
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %s FROM flagctl_release, flagctl_security', {table});
        EXECUTE format('GRANT SELECT ON %s TO flagctl_viewer', {table});
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'no grants on %: its owner grants SELECT, UPDATE to %, SELECT to flagctl_viewer', {table}, owner;
END
$$
"""
