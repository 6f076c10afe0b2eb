"""flagctl manifest publish | show | diff | history — the catalogue in the database;
flagctl manifest validate | schema — the file itself, offline.

The published manifest is the one the database checks changes against, that gates read,
and that kills and releases act on. A CLI whose local file differs from it refuses any
other change until the two agree: publish the local one, or work from the published one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, audit_context, connect, local_manifest, manifest, manifest_path
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.store.catalogue import Published

app = typer.Typer(help="Publish the manifest to the database; show, compare and list what is published; "
                       "check a manifest file offline.", no_args_is_help=True)  # fmt: skip

VersionOpt = Annotated[
    int | None, typer.Option("--version", help="A published version (default: the newest).")
]


@app.command("publish")
@mutating(dry_run=False)
def publish(
    ctx: typer.Context,
    *,
    mutation: Mutation,
) -> None:
    """Publish the local manifest as the system's catalogue (release and admin members).

    Audited as manifest.publish; gates reload it at once. Publishing the text already
    published changes nothing."""
    from flagctl.store.catalogue import publish as store_publish

    env = env_of(ctx)
    loaded = local_manifest(env, "manifest publish")
    audit = audit_context(env, mutation, "manifest.publish")
    conn = connect(env)
    version, digest, new = store_publish(conn, loaded, audit)
    if mutation.output is Output.json:
        render.emit_json({"system": loaded.system, "version": version, "sha256": digest, "published": new})
    elif new:
        render.out(f"published {loaded.path} as version {version} of {loaded.system} (sha256 {digest[:12]})")
    else:
        render.out(
            f"nothing to do: {loaded.path} is published already (version {version} of {loaded.system})"
        )


@app.command("show")
def show(ctx: typer.Context, version: VersionOpt = None, output: OutputOpt = Output.table) -> None:
    """Print the published manifest exactly as it was published."""
    env = env_of(ctx)
    loaded = manifest(env)
    found = _published(env, loaded.system, version)
    if output is Output.json:
        render.emit_json({"system": loaded.system, **found.to_json(), "source": found.source})
        return
    render.note(
        f"# {loaded.system} version {found.version}, published {render.when(found.published_at)} "
        f"by {found.actor or found.published_by} (sha256 {found.sha256[:12]})"
    )
    render.out(found.source.rstrip("\n"))


@app.command("diff")
def diff(ctx: typer.Context, version: VersionOpt = None, output: OutputOpt = Output.table) -> None:
    """Compare the local manifest with the published one: exit 0 when they are the same,
    1 when they differ (a unified diff, published first)."""
    import difflib

    env = env_of(ctx)
    loaded = local_manifest(env, "manifest diff")
    found = _published(env, loaded.system, version)
    lines = list(
        difflib.unified_diff(
            found.source.splitlines(keepends=True), loaded.source.splitlines(keepends=True),
            f"published {loaded.system} v{found.version}", loaded.path,
        )
    )  # fmt: skip
    if output is Output.json:
        render.emit_json(
            {"system": loaded.system, "version": found.version, "same": not lines, "diff": "".join(lines)}
        )
    elif lines:
        render.out("".join(lines).rstrip("\n"))
    else:
        render.out(f"{loaded.path} is the published version {found.version} of {loaded.system}")
    if lines:
        raise CheckFailed(f"{loaded.path} differs from the published version {found.version}")


@app.command("history")
def history(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Every published version of the system, oldest first."""
    from flagctl.store.catalogue import history as store_history

    env = env_of(ctx)
    loaded = manifest(env)
    found = store_history(connect(env), loaded.system)
    if output is Output.json:
        render.emit_json({"system": loaded.system, "versions": [p.to_json() for p in found]})
        return
    if not found:
        render.out(f"no manifest of {loaded.system} is published yet: flagctl manifest publish -r …")
        return
    rows = [
        (p.version, render.when(p.published_at), f"{p.actor or p.published_by} (db: {p.published_by})",
         p.sha256[:12], p.reason or "")
        for p in found
    ]  # fmt: skip
    render.out(render.table(rows, ["version", "published", "by", "sha256", "reason"]))


def _published(env: Environment, system: str, version: int | None) -> Published:
    from flagctl.store.catalogue import published

    found = published(connect(env), system, version)
    if found is None:
        which = f"version {version} of {system}" if version is not None else f"a manifest of {system}"
        raise UsageError(
            f"{which} is not published in this database", "publish it: flagctl manifest publish -r …"
        )
    return found


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: Annotated[
        str | None,
        typer.Argument(
            help="The manifest file (default: --manifest, FLAGCTL_MANIFEST, the target's, ./flagctl.yaml)."
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Check a manifest file without a database, as every command would: exit 0 if it is
    valid, else exit 2 listing every problem with its path (for a PR check or an editor)."""
    from flagctl.model.manifest import load_manifest

    env = env_of(ctx)
    env.options.output = output
    path = file or manifest_path(env)
    loaded = load_manifest(path)  # no cache: validated anew, always
    model = loaded.model
    counts = {
        "flags": len(model.flags),
        "ladders": len(model.ladders),
        "kill_switches": len(model.kill_switches),
    }
    if output is Output.json:
        render.emit_json({"file": path, "valid": True, "system": model.system, **counts})
        return
    words = {"flags": ("flag", "flags"), "ladders": ("ladder", "ladders"),
             "kill_switches": ("kill switch", "kill switches")}  # fmt: skip
    shown = ", ".join(f"{n} {words[what][n != 1]}" for what, n in counts.items())
    render.out(f"{path}: valid — system {model.system}: {shown}")


@app.command("schema")
def schema() -> None:
    """Print a JSON Schema of the manifest, generated from flagctl's own validator (for an
    editor's completion, or a check before flagctl is installed). What it cannot express —
    references between flags, ladders and switches — `manifest validate` checks."""
    from pydantic import TypeAdapter

    from flagctl.model.manifest import ManifestModel

    document = TypeAdapter(ManifestModel).json_schema()
    render.emit_json(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", **document, "title": "flagctl manifest"}
    )
