"""flagctl eval FLAG --id ID [--scope S…] | --subjects-sql SQL [--percent N]."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import UsageError


def eval_flag(
    ctx: typer.Context,
    flag: Annotated[str, typer.Argument(help="A rollout or bool flag.", autocompletion=complete.flags)],
    subject: Annotated[str | None, typer.Option("--id", help="The subject's id (e.g. a resume_id).")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="A scope the subject is in, KIND:VALUE (repeatable).",
            autocompletion=complete.scopes,
        ),
    ] = None,
    internal: Annotated[bool, typer.Option("--internal", help="The subject is marked internal.")] = False,
    subjects_sql: Annotated[
        str | None,
        typer.Option("--subjects-sql", help="Blast radius: a query whose first column is the subject id."),
    ] = None,
    percent: Annotated[
        int | None, typer.Option("--percent", min=0, max=100, help="With --subjects-sql: a proposed percent.")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Is one subject eligible, with its bucket and the rule that decided? Or, with
    --subjects-sql, how many subjects are eligible now and at a proposed --percent."""
    from flagctl.views import evaluate

    env = env_of(ctx)
    loaded = manifest(env)
    loaded.flag(flag)
    if (subject is None) == (subjects_sql is None):
        raise UsageError("give --id ID (one subject) or --subjects-sql SQL (blast radius)")
    conn = connect(env)
    if subjects_sql is not None:
        radius = evaluate.blast_radius(conn, loaded, flag, subjects_sql, percent)
        if output is Output.json:
            render.emit_json({"flag": flag, **radius.to_json()})
        else:
            render.out(f"{flag}: {radius.describe()}")
        return
    assert subject is not None
    decision = evaluate.evaluate(conn, loaded, flag, subject, scope or [], internal)
    if output is Output.json:
        render.emit_json(decision.to_json())
        return
    from flagctl.model.flagtypes import effective_text

    verdict = "eligible" if decision.eligible else "not eligible"
    said = decision.bucket is None or "bucket" in decision.rule  # the rule names it already
    bucket = "" if said else f", bucket {decision.bucket}"
    render.out(f"{flag} for {subject}: {verdict} — {decision.rule}{bucket}")
    render.out(f"value ({decision.value_scope}): {effective_text(decision.value)}")  # on 40%, off, …
