"""Shell completion of names, as kubectl completes resources: ladders, flags, kill switches,
profiles, guardrails, targets and scopes, from the manifest (through the manifest cache:
no database) and the config file.

A completer honours the global options already on the command line (``--manifest``,
``--target``, ``--config``) and the environment (``FLAGCTL_MANIFEST``, …), filters by
what was typed, and never fails: a missing or broken manifest completes nothing, with no
traceback and no wait on a database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagctl.model.manifest import Manifest

# typer's ``autocompletion``: (context, the words so far, what is typed) → (name, help) pairs
Completer = Callable[[Any, list[str], str], list[tuple[str, str]]]


def _items(pairs: Iterable[tuple[str, str]], incomplete: str) -> list[tuple[str, str]]:
    return [(name, help) for name, help in pairs if name.startswith(incomplete)]


def _options(ctx: Any) -> Any:
    from flagctl.config import Options

    root = ctx.find_root().params if ctx is not None else {}
    return Options(
        target=root.get("target"),
        dsn=root.get("dsn"),
        manifest=root.get("manifest"),
        config=root.get("config"),
    )


def _manifest(ctx: Any) -> Manifest | None:
    """The manifest the command would read, or None (completion never raises)."""
    try:
        from flagctl.config import resolve_manifest_path, resolve_target
        from flagctl.model.cache import ManifestCache
        from flagctl.model.manifest import load_manifest

        options = _options(ctx)
        target = resolve_target(options, os.environ)
        path = resolve_manifest_path(options, os.environ, target)
        return load_manifest(str(path), ManifestCache.from_environ(os.environ))
    except Exception:  # a shell is waiting: whatever went wrong, offer nothing
        return None


def _completer(names: Callable[[Manifest], Iterable[tuple[str, str]]]) -> Completer:
    def complete(ctx: Any, args: list[str], incomplete: str) -> list[tuple[str, str]]:
        loaded = _manifest(ctx)
        if loaded is None:
            return []
        try:
            return _items(names(loaded), incomplete)
        except Exception:
            return []

    return complete


def _flags(loaded: Manifest) -> Iterable[tuple[str, str]]:
    for name, flag in loaded.flags.items():
        yield name, type(flag).__name__.removesuffix("Flag").lower() or "flag"


def _ladders(loaded: Manifest) -> Iterable[tuple[str, str]]:
    for name, ladder in loaded.ladders.items():
        yield name, " → ".join(stage.name for stage in ladder.stages)


def _stages(ctx: Any, args: list[str], incomplete: str) -> list[tuple[str, str]]:
    """The stages of the ladder already given (``stage set LADDER <TAB>``)."""
    loaded = _manifest(ctx)
    ladder = (ctx.params.get("ladder") if ctx is not None else None) or ""
    if loaded is None or ladder not in loaded.ladders:
        return []
    return _items(((s.name, s.describe()) for s in loaded.ladders[ladder].stages), incomplete)


def _switches(loaded: Manifest) -> Iterable[tuple[str, str]]:
    for name, spec in sorted(loaded.model.kill_switches.items(), key=lambda kv: (kv[1].level, kv[0])):
        yield name, f"KS{spec.level}" + (f": {spec.description}" if spec.description else "")


def _guardrails(loaded: Manifest) -> Iterable[tuple[str, str]]:
    for name, guard in loaded.model.guardrails.items():
        yield name, getattr(guard, "severity", "") or ""


def _profiles(loaded: Manifest) -> Iterable[tuple[str, str]]:
    from flagctl.model.profile import profiles_dir

    folder = profiles_dir(loaded)
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        yield path.stem, path.name


def _scopes(ctx: Any, args: list[str], incomplete: str) -> list[tuple[str, str]]:
    """``global``, and ``KIND:`` for each scope kind the manifest's flags take (the flag's
    own, when the command names one)."""
    loaded = _manifest(ctx)
    if loaded is None:
        return []
    flag = ctx.params.get("flag") if ctx is not None else None
    flags = [loaded.flags[flag]] if flag in loaded.flags else list(loaded.flags.values())
    kinds = sorted({kind for f in flags for kind in (getattr(f, "scopes", None) or [])})
    return _items([("global", "every subject"), *((f"{kind}:", f"one {kind}") for kind in kinds)], incomplete)


def _targets(ctx: Any, args: list[str], incomplete: str) -> list[tuple[str, str]]:
    """The targets of the config file (``--target a,b``: completes the last name)."""
    try:
        from flagctl.config import Options, _config

        root = ctx.find_root().params if ctx is not None else {}
        targets, _, _ = _config(Options(config=root.get("config")), os.environ)
        head, comma, _ = incomplete.rpartition(",")
        return _items(((head + comma + name, "") for name in targets), incomplete)
    except Exception:
        return []


flags = _completer(_flags)
ladders = _completer(_ladders)
stages = _stages
switches = _completer(_switches)
guardrails = _completer(_guardrails)
profiles = _completer(_profiles)
scopes = _scopes
targets = _targets
