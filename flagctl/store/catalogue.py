"""The published catalogue (``flagctl.catalogue``, schema 19): publish a manifest, read the
published one, its history.

The newest version of a system is the published one. It is published through
``flagctl.publish_manifest`` (the role is checked and the SHA-256 computed in the database);
nothing else writes the table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest
    from flagctl.store.db import AuditContext

PUBLISH = "SELECT version, sha256, new FROM flagctl.publish_manifest(%s, %s, %s, %s, %s, %s)"
COLUMNS = "version, sha256, source, published_at, published_by, actor, reason"
NEWEST = f"SELECT {COLUMNS} FROM flagctl.catalogue WHERE system = %s ORDER BY version DESC LIMIT 1"  # noqa: S608
VERSION = f"SELECT {COLUMNS} FROM flagctl.catalogue WHERE system = %s AND version = %s"  # noqa: S608
HISTORY = (
    "SELECT version, sha256, '', published_at, published_by, actor, reason"
    " FROM flagctl.catalogue WHERE system = %s ORDER BY version"
)


@dataclass(frozen=True)
class Published:
    version: int
    sha256: str
    source: str
    published_at: datetime
    published_by: str
    actor: str | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "published_at": self.published_at.isoformat(),
            "published_by": self.published_by,
            "actor": self.actor,
            "reason": self.reason,
        }


def publish(conn: psycopg.Connection[Any], manifest: Manifest, audit: AuditContext) -> tuple[int, str, bool]:
    """Publish this manifest's text (its version, SHA-256, and whether it is a new version)."""
    from psycopg.types.json import Jsonb

    from flagctl.model.catalogue import catalogue_of
    from flagctl.store.schema import check_bindings

    with conn.transaction():
        check_bindings(conn, manifest)  # a catalogue the database cannot act on is not published
        row = conn.execute(
            PUBLISH,
            (
                manifest.system,
                manifest.source,
                Jsonb(catalogue_of(manifest)),
                audit.actor,
                audit.reason,
                audit.command,
            ),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), bool(row[2])


def published(conn: psycopg.Connection[Any], system: str, version: int | None = None) -> Published | None:
    """The published catalogue of a system (or one version of it); None: none published."""
    if version is None:
        row = conn.execute(NEWEST, (system,)).fetchone()
    else:
        row = conn.execute(VERSION, (system, version)).fetchone()
    return None if row is None else Published(*row)


def history(conn: psycopg.Connection[Any], system: str) -> list[Published]:
    """Every published version of a system, oldest first (without their text)."""
    return [Published(*row) for row in conn.execute(HISTORY, (system,)).fetchall()]


def published_manifest(conn: psycopg.Connection[Any], system: str, cache: Any = None) -> Manifest:
    """The published manifest of a system, read and validated (through the manifest cache)."""
    from flagctl.model.manifest import parse_manifest

    found = published(conn, system)
    if found is None:
        raise UsageError(
            f"no manifest of system {system} is published in this database",
            "publish it from a checkout that has it: flagctl manifest publish -r …",
        )
    where = f"published manifest {system} v{found.version}"
    cached = cache.get(found.source, where) if cache is not None else None
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    manifest = parse_manifest(found.source, where)
    if cache is not None:
        cache.put(found.source, manifest)
    return manifest
