"""Which database and which manifest: the precedence rules, written down once.

Target (the database holding control state) — a flag always beats the environment:
  1. ``--dsn`` or ``--target`` on the command line    (both at once is a usage error)
  2. ``FLAGCTL_DSN``, then ``FLAGCTL_TARGET``         the environment
  3. libpq environment (``PGHOST``, ``PGSERVICE``…)   libpq's own defaults
  4. ``default_target`` in the config file
  5. the embedded PostgreSQL in the user data dir
A DSN may be a libpq key/value string or URI (``service=NAME`` works); a named target
comes from the config file.

Manifest:
  1. ``--manifest``
  2. the ``manifest:`` of a target named with ``--target``
  3. ``FLAGCTL_MANIFEST``
  4. the ``manifest:`` of a target from the environment or ``default_target``
  5. ``./flagctl.yaml``

Config file: ``--config`` > ``FLAGCTL_CONFIG`` > ``<user config dir>/flagctl/config.yaml``::

    default_target: prod
    targets:
      prod: {dsn: "service=flags-prod", manifest: /etc/flagctl/phase3.yaml}
      local: {local: true}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from flagctl.errors import ConfigError, UsageError

LIBPQ_TARGET_VARS = ("PGHOST", "PGHOSTADDR", "PGSERVICE", "PGPORT", "PGDATABASE")


@dataclass(frozen=True)
class Target:
    """A resolved database target. ``dsn is None`` means the embedded PostgreSQL."""

    name: str
    dsn: str | None
    source: str
    manifest: str | None = None
    via: str | None = None  # how the operator chose it, when not as ``source`` says (a fan-out)

    @property
    def is_local(self) -> bool:
        return self.dsn is None

    @property
    def origin(self) -> str:
        """Where the target came from, as the operator wrote it: ``--dsn``, ``--target``,
        ``--all-targets`` (each fan-out child is given its target by name)."""
        return self.via or self.source


@dataclass(frozen=True)
class Options:
    """Connection options as given on the command line (``None`` = not given)."""

    target: str | None = None
    dsn: str | None = None
    manifest: str | None = None
    config: str | None = None


def default_config_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path("flagctl") / "config.yaml"


def load_config(path: Path, explicit: bool) -> dict[str, Any]:
    from flagctl.model.yamlio import load_yaml, read_utf8

    try:
        text = read_utf8(path, ConfigError)
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"config file not found: {path}") from None
        return {}
    data = load_yaml(text, str(path), error=ConfigError) or {}
    if not isinstance(data, dict) or not isinstance(data.get("targets", {}), dict):
        raise UsageError(f"invalid config file {path}: expected a mapping with targets: {{NAME: {{dsn: …}}}}")
    unknown = set(data) - {"default_target", "targets"}
    if unknown:
        raise UsageError(f"invalid config file {path}: unknown key {sorted(unknown)[0]!r}")
    return data


# Set by a fan-out for each child (flagctl.cli.fanout): the option the operator gave.
FANOUT_VIA = "FLAGCTL_FANOUT_VIA"


def resolve_target(options: Options, environ: Mapping[str, str]) -> Target:
    if options.dsn and options.target:
        raise UsageError("give --dsn or --target, not both", "--target names a DSN from the config file")
    # 1. the command line
    if options.dsn:
        return Target(name=redact_dsn(options.dsn), dsn=options.dsn, source="--dsn")
    if options.target:
        targets, config_path, _ = _config(options, environ)
        named = _named(options.target, targets, config_path, "--target")
        return replace(named, via=environ.get(FANOUT_VIA) or None)
    # 2. the environment
    if environ.get("FLAGCTL_DSN"):
        return Target(
            name=redact_dsn(environ["FLAGCTL_DSN"]), dsn=environ["FLAGCTL_DSN"], source="FLAGCTL_DSN"
        )
    targets, config_path, config = _config(options, environ)
    if environ.get("FLAGCTL_TARGET"):
        return _named(environ["FLAGCTL_TARGET"], targets, config_path, "FLAGCTL_TARGET")
    # 3. libpq's environment, 4. the config file's default, 5. the embedded server
    if any(environ.get(var) for var in LIBPQ_TARGET_VARS):
        return Target(name="libpq environment", dsn="", source="PG* variables")
    if config.get("default_target"):
        return _named(str(config["default_target"]), targets, config_path, "default_target")
    return Target(name="local", dsn=None, source="embedded PostgreSQL")


def _config(options: Options, environ: Mapping[str, str]) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    config_path_text = options.config or environ.get("FLAGCTL_CONFIG")
    config_path = Path(config_path_text) if config_path_text else default_config_path()
    config = load_config(config_path, explicit=bool(config_path_text))
    return config.get("targets") or {}, config_path, config


def _named(name: str, targets: dict[str, Any], path: Path, source: str) -> Target:
    entry = targets.get(name)
    if not isinstance(entry, dict):
        known = ", ".join(targets) or "none defined"
        raise UsageError(f"unknown target {name!r} in {path}", f"targets: {known}")
    unknown = set(entry) - {"dsn", "local", "manifest"}
    if unknown:
        raise UsageError(f"target {name!r} in {path}: unknown key {sorted(unknown)[0]!r}")
    manifest = str(entry["manifest"]) if entry.get("manifest") else None
    if entry.get("local"):
        return Target(name=name, dsn=None, source=source, manifest=manifest)
    if not entry.get("dsn"):
        raise UsageError(f"target {name!r} in {path} has no dsn (or local: true)")
    return Target(name=name, dsn=str(entry["dsn"]), source=source, manifest=manifest)


def resolve_manifest_path(options: Options, environ: Mapping[str, str], target: Target | None) -> str:
    if options.manifest:
        return options.manifest
    if target is not None and target.manifest and target.source == "--target":
        return target.manifest
    if environ.get("FLAGCTL_MANIFEST"):
        return environ["FLAGCTL_MANIFEST"]
    if target is not None and target.manifest:
        return target.manifest
    return "flagctl.yaml"


def redact_dsn(dsn: str) -> str:
    """A DSN fit to print: host, port, database and user, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "(unparseable DSN)"
    shown = []
    for key in ("service", "host", "port", "dbname", "user"):
        if parts.get(key):
            shown.append(f"{key}={parts[key]}")
    return " ".join(shown) or "(libpq defaults)"
