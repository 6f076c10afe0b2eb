"""flagctl requests | approve ID | review pending|ack SEQ — four eyes, before and after.

``requests`` lists the changes waiting for a second person (the manifest's ``approvals:``);
``approve`` applies one, checked again at that moment (bake, guardrails, freezes), as a
different database user — the database refuses the requester. ``review`` is the
post-action review of emergency actions (kills, forced changes, broken locks), by someone
other than the database user who acted."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import ActorOpt, OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, audit_context, connect, manifest, mutate
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

review_app = typer.Typer(
    help="Post-action review of emergency actions (kills, forced changes, broken locks).",
    no_args_is_help=True,
)


def list_requests(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Also approved and expired requests.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Changes waiting for a second person (newest first)."""
    from flagctl.store.requests import requests

    env = env_of(ctx)
    found = requests(connect(env), manifest(env), everything)
    if output is Output.json:
        render.emit_json({"requests": [r.to_json() for r in found]})
        return
    if not found:
        render.out("no request waits for approval")
        return
    rows = [
        (
            r.id,
            r.status,
            r.summary,
            r.requested_actor or r.requested_by,
            render.when(r.expires_at),
            r.why,
            r.reason,
        )
        for r in found
    ]
    render.out(render.table(rows, ["id", "status", "change", "by", "expires", "why", "reason"]))


@mutating()
def approve(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(help="The request (flagctl requests).")],
    *,
    mutation: Mutation,
) -> None:
    """Apply a pending request as a second person, checked again now (bake, guardrails,
    freezes). The database refuses the user who asked for it."""
    from flagctl.actions.approve import approval_reason, pending, rebuild

    env = env_of(ctx)
    loaded = manifest(env)
    found = pending(connect(env), loaded, request_id)
    text = approval_reason(found, mutation.reason)
    mutate(
        env,
        replace(mutation, reason=text),
        rebuild(loaded, found, env.caps.clock),
        approving=request_id,
    )


@review_app.command("pending")
def review_pending(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Emergency actions not reviewed yet; exit 1 while there is any (for a CI job or a
    morning check)."""
    from flagctl.store.requests import emergencies

    env = env_of(ctx)
    found = [e for e in emergencies(connect(env), manifest(env)) if e.reviewed_by is None]
    if output is Output.json:
        render.emit_json({"pending": [e.to_json() for e in found]})
    elif found:
        rows = [
            (e.seq, render.when(e.at), e.actor or e.db_user, e.action, e.flags, e.reason or "") for e in found
        ]
        render.out(render.table(rows, ["audit #", "at", "by", "action", "flags", "reason"]))
    else:
        render.out("every emergency action has been reviewed")
    if found:
        raise CheckFailed(
            f"{len(found)} emergency action(s) not reviewed yet",
            "someone other than the actor reviews each: flagctl review ack AUDIT# --note …",
        )


@review_app.command("ack")
def review_ack(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The audit row of the action (review pending).")],
    note: Annotated[str, typer.Option("--note", help="What the review found.")],
    actor: ActorOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Record the review of one emergency action. The database refuses the user who did it."""
    from flagctl.store.db import transaction
    from flagctl.store.requests import emergencies, review

    env = env_of(ctx)
    loaded = manifest(env)
    audit = audit_context(env, Mutation(note, True, actor, False, output), "review")
    conn = connect(env)
    target = next((e for e in emergencies(conn, loaded) if e.seq == seq), None)
    if target is None:
        raise UsageError(
            f"audit row {seq} is not an emergency action of {loaded.system}",
            "flagctl review pending lists them",
        )
    if target.reviewed_by is not None:
        render.out(f"nothing to do: audit row {seq} was reviewed by {target.reviewed_by}")
        return
    with transaction(conn, audit) as tx:
        review(tx, loaded, seq, audit.reason)
    if output is Output.json:
        render.emit_json({"audit_seq": seq, "reviewed": True})
    else:
        render.out(f"reviewed audit row {seq} ({target.action} by {target.actor or target.db_user})")
