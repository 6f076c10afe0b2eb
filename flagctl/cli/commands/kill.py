"""flagctl kill SWITCH | kill --list — engage a kill switch now, or list them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import ScopeOpt, env_of, mutating
from flagctl.cli.fastkill import DEFAULTS, engage
from flagctl.cli.flow import Mutation, connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest

SwitchArg = Annotated[
    str | None,
    typer.Argument(
        help="The kill switch (see the manifest's kill_switches:).", autocompletion=complete.switches
    ),
]


@mutating()
def kill(
    ctx: typer.Context,
    switch: SwitchArg = None,
    list_: Annotated[bool, typer.Option("--list", help="List kill switches and which are engaged.")] = False,
    scope: ScopeOpt = DEFAULTS["scope"],
    break_locks: Annotated[
        bool,
        typer.Option(
            "--break-locks",
            help="If the kill waits past --lock-timeout: end exactly the sessions it waits for (cancel; "
            "terminate if idle or still there after 1s; never a superuser's), each audited, and engage.",
        ),
    ] = False,
    wait_ack: Annotated[
        bool,
        typer.Option(
            "--wait-ack",
            help="After the kill: wait until every live gate client (flagctl clients) has applied it; "
            "exit 1 naming the ones that have not (the kill stays engaged).",
        ),
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="--wait-ack: how long to wait.")] = DEFAULTS[
        "timeout"
    ],
    live: Annotated[
        str, typer.Option("--live", help="--wait-ack: a client seen within this long counts as live.")
    ] = DEFAULTS["live"],
    *,
    mutation: Mutation,
) -> None:
    """Engage a kill switch now: one transaction, no bake, no guardrail, exact prior
    values recorded so `flagctl release` restores them."""
    env = env_of(ctx)
    loaded = manifest(env)
    if list_:
        _list(env, loaded, mutation.output)
        return
    if switch is None:
        raise UsageError("kill needs a SWITCH (or --list)", "flagctl kill --list shows them")
    waits = (timeout, live) if wait_ack else None
    engage(env, loaded, switch, scope, mutation, break_locks, waits)


def _list(env: Environment, loaded: Manifest, output: Output) -> None:
    from flagctl.rules.kills import Engaged
    from flagctl.store.switches import engaged_json, list_engaged

    engaged: dict[str, list[Engaged]] = {}
    for record in list_engaged(connect(env), loaded):
        engaged.setdefault(record.switch, []).append(record)
    ordered = sorted(loaded.model.kill_switches.items(), key=lambda kv: (kv[1].level, kv[0]))
    if output is Output.json:
        render.emit_json({
            "system": loaded.system,
            "kill_switches": [
                {
                    "name": name,
                    "level": spec.level,
                    "description": spec.description,
                    "includes": spec.includes,
                    "sets": {f: s.to_json() for f, s in loaded.switches[name].items()},
                    "engaged": [engaged_json(loaded, e) for e in engaged.get(name, [])],
                }
                for name, spec in ordered
            ],
        })  # fmt: skip
        return
    rows = []
    for name, spec in ordered:
        state = "; ".join(
            f"{e.scope} since {render.when(e.engaged_at)} by {e.actor or e.db_user}"
            for e in engaged.get(name, [])
        )
        rows.append(
            (name, f"KS{spec.level}", ", ".join(loaded.switches[name]), state or "no", spec.description or "")
        )
    render.out(render.table(rows, ["switch", "level", "flags", "engaged", "description"]))
