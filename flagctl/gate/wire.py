"""A gate's state as JSON: what ``flagctl serve`` sends a gate reading through it
(``GET /flagctl/v1/state``), and how that gate reads it back — the same ``State`` a gate
reading PostgreSQL builds, so its decisions are the same, byte for byte.

The document carries the manifest's text (the gate validates it itself, through the
manifest cache), every flag's stored value and scoped overrides as the database stores
them, the engaged switches' rows as stored, the exemptions, and the change sequence and
digest the relay read them with. Nothing in it is executed: values are read by the
manifest's types, as from the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest
from flagctl.rules.kills import Engaged
from flagctl.store.flags import Snapshot
from flagctl.store.switches import engaged_from_row

if TYPE_CHECKING:
    from flagctl.gate.client import State

FORMAT = 1


def encode(state: State) -> dict[str, Any]:
    """The state as a JSON document."""
    manifest, snapshot = state.manifest, state.snapshot
    flags = {}
    for name, spec in manifest.flags.items():
        overrides = snapshot.overrides.get(name, {})
        flags[name] = {
            "value": spec.to_db(snapshot.globals[name]),
            "stored": name in snapshot.stored,
            "overrides": {scope: spec.to_db(value) for scope, value in overrides.items()},
        }
    return {
        "format": FORMAT,
        "system": manifest.system,
        "seq": state.seq,
        "digest": state.digest,
        "manifest": manifest.source,
        "flags": flags,
        "engaged": [[*row[:4], row[4].isoformat(), *row[5:]] for row in state.engaged_rows],
        "exemptions": state.exemptions,
    }


@dataclass(frozen=True)
class Parts:
    """What a state document holds, read back: ``Gate.apply`` makes it a gate's state."""

    manifest: Manifest
    snapshot: Snapshot
    engaged: list[Engaged]
    exemptions: dict[str, dict[str, str]]
    seq: int
    digest: str
    engaged_rows: tuple[tuple[Any, ...], ...]


def decode(document: dict[str, Any], manifest_of: Callable[[str], Manifest]) -> Parts:
    """The state a document describes (``manifest_of``: the manifest for its text)."""
    if document.get("format") != FORMAT:
        raise ValueError(f"a state document of format {document.get('format')!r}; this gate reads {FORMAT}")
    manifest = manifest_of(str(document["manifest"]))
    if manifest.system != document["system"]:
        raise ValueError(f"the state is of {document['system']}, its manifest of {manifest.system}")
    snapshot = Snapshot()
    for name, spec in manifest.flags.items():
        given = document["flags"][name]
        snapshot.globals[name] = spec.from_db(given["value"])
        if given["stored"]:
            snapshot.stored.add(name)
        if given["overrides"]:
            snapshot.overrides[name] = {scope: spec.from_db(v) for scope, v in given["overrides"].items()}
    rows = tuple((*row[:4], datetime.fromisoformat(row[4]), *row[5:]) for row in document["engaged"])
    engaged = [engaged_from_row(manifest, row) for row in rows]
    exemptions = {flag: dict(by_scope) for flag, by_scope in document["exemptions"].items()}
    return Parts(manifest, snapshot, engaged, exemptions, int(document["seq"]), str(document["digest"]), rows)
