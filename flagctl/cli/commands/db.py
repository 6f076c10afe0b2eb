"""flagctl db init | db status — install or upgrade the schema; show its state."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import Mutation, audit_context, connect, local_manifest
from flagctl.cli.render import Output

CATALOGUE_VERSION = 19  # the schema version that keeps the catalogue (flagctl manifest publish)

app = typer.Typer(help="Install, upgrade and inspect the flagctl schema.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    no_manifest: Annotated[
        bool, typer.Option("--no-manifest", help="Install the schema only; bind no tables.")
    ] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Install or upgrade the flagctl schema (idempotent), bind the manifest's tables and
    publish the manifest (flagctl manifest publish).

    Each bound table gets the audit trigger, so even plain-SQL changes to it are audited.
    """
    from flagctl.store import schema
    from flagctl.store.catalogue import publish

    env = env_of(ctx)
    loaded = None if no_manifest else local_manifest(env, "db init")
    conn = connect(env)
    result = schema.init(conn, loaded)
    published = None
    if loaded is not None and result.version >= CATALOGUE_VERSION:
        audit = audit_context(env, Mutation("db init", True, None, False, output), "manifest.publish")
        published = publish(conn, loaded, audit)
    if output is Output.json:
        render.emit_json(
            {
                "version": result.version,
                "applied": result.applied,
                "routines": result.routines,
                "bindings": result.bindings,
                "warnings": result.warnings,
                "published": None
                if published is None
                else {"version": published[0], "sha256": published[1], "new": published[2]},
            }
        )
        return
    if result.applied and result.applied[0] == 1:  # an empty database: every migration
        render.out(f"schema flagctl installed at version {result.version}")
    elif result.applied:
        done = ", ".join(map(str, result.applied))
        render.out(f"schema flagctl upgraded to version {result.version} (applied {done})")
    else:
        render.out(f"schema flagctl is up to date (version {result.version})")
    if result.routines:
        render.out(f"functions (re)defined from flagctl/sql/routines: {', '.join(result.routines)}")
    for binding in result.bindings:
        render.out(f"bound {binding} (audit trigger installed)")
    if published is not None and loaded is not None:
        version, digest, new = published
        state = "published" if new else "is published already"
        render.out(
            f"manifest {loaded.path} {state} as version {version} of {loaded.system} (sha256 {digest[:12]})"
        )
    for warning in result.warnings:
        render.note(f"warning: {warning}")


@app.command("status")
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Show the schema version, applied migrations, bound tables and the audit rows waiting
    to be sealed."""
    from flagctl.store import schema
    from flagctl.store.audit import backlog

    conn = connect(env_of(ctx))
    info = schema.status(conn)
    waiting = backlog(conn) if info.installed else None
    if output is Output.json:
        render.emit_json(
            {
                "installed": info.installed,
                "version": info.version,
                "latest": info.latest,
                "unsealed": waiting.rows if waiting else None,
                "routines": [{"name": name, "state": state} for name, state in info.routines],
                "migrations": [
                    {"version": v, "name": n, "applied_at": at, "checksum_ok": ok}
                    for v, n, at, ok in info.migrations
                ],
                "bindings": [
                    {
                        "system": b.system,
                        "flag": b.flag,
                        "table": b.table,
                        "key": b.key,
                        "columns": b.columns,
                        "registered_at": b.registered_at,
                        "audit_trigger": b.trigger,
                        "in_the_way": b.in_the_way,
                    }
                    for b in info.bindings
                ],
            }
        )
        return
    if not info.installed:
        render.out(f"schema flagctl is not installed (latest version {info.latest}); run: flagctl db init")
        return
    state = "up to date" if info.version == info.latest else "behind: run flagctl db init"
    render.out(f"schema flagctl version {info.version} of {info.latest} ({state})")
    for _version, name, at, ok in info.migrations:
        render.out(f"  {name} applied {render.when(at)}" + ("" if ok else "  (file changed since)"))
    stale = [f"{name} ({state})" for name, state in info.routines if state != "current"]
    render.out(
        "functions: current"
        if not stale
        else f"functions: not current, run flagctl db init: {', '.join(stale)}"
    )
    if waiting is not None and waiting.rows:
        render.out(
            f"audit: {waiting.describe()} (at-commit seals were skipped; flagctl audit verify seals them)"
        )
    if info.bindings:
        render.out("")
        render.out(
            render.table(
                [
                    (
                        b.system,
                        b.flag,
                        b.table,
                        ", ".join(f"{column}={value}" for column, value in b.key.items()),
                        "yes" if b.trigger else "MISSING",
                        "; ".join(b.in_the_way) or "-",
                    )
                    for b in info.bindings
                ],
                ["system", "flag", "table", "key", "audit trigger", "can stop flagctl's writes"],
            )
        )


RoleArg = Annotated[str, typer.Argument(help="viewer, release, security, ops or admin.")]
UserArg = Annotated[str, typer.Argument(help="The database user (a LOGIN role) to give it to.")]


@app.command("grant")
def grant(ctx: typer.Context, role: RoleArg, user: UserArg, output: OutputOpt = Output.table) -> None:
    """Give a database user a flagctl role. PostgreSQL enforces it: the same user is
    refused in psql as in flagctl. Run it as the schema's owner or a flagctl admin."""
    _grant(ctx, role, user, output, revoke=False)


@app.command("revoke")
def revoke(ctx: typer.Context, role: RoleArg, user: UserArg, output: OutputOpt = Output.table) -> None:
    """Take a flagctl role back from a database user."""
    _grant(ctx, role, user, output, revoke=True)


def _grant(ctx: typer.Context, role: str, user: str, output: Output, revoke: bool) -> None:
    from flagctl.store.roles import ROLES, grant

    changed = grant(connect(env_of(ctx)), role, user, revoke=revoke)
    verb = "revoked from" if revoke else "granted to"
    if output is Output.json:
        render.emit_json({"role": role, "user": user, "granted": not revoke, "changed": changed})
        return
    if changed:
        render.out(f"flagctl role {role} {verb} {user}: {ROLES[role]}")
    else:
        render.out(
            f"nothing to do: {user} {'does not have' if revoke else 'already has'} the flagctl role {role}"
        )
