"""Which database a command changes: an explicit flag always beats the environment, and
every mutating command says which target it changed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import WS8_MANIFEST, WS8_SCHEMA, Cli, Server, p3_state

GO = ("-r", "INC-5", "-y")


@pytest.fixture
def other_ws8(server: Server) -> Iterator[str]:
    """A second WS8 database, beside the test's own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(WS8_SCHEMA.encode())
    try:
        yield dsn
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_an_explicit_target_beats_flagctl_dsn_and_the_output_names_it(
    ws8: Cli, other_ws8: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  standby: {{dsn: '{other_ws8}', manifest: '{WS8_MANIFEST}'}}\n")
    # FLAGCTL_DSN (the test's own database) is in the environment; --target must win.
    assert ws8("--config", str(config), "--target", "standby", "db", "init").exit_code == 0
    ws8("--config", str(config), "--target", "standby", "stage", "set", "p3", "canary", *GO)
    result = ws8("--config", str(config), "--target", "standby", "kill", "p3-off", *GO)
    assert result.exit_code == 0, result.stderr
    assert "applied to target standby (--target)" in result.stdout
    assert p3_state(Cli(other_ws8, WS8_MANIFEST)) == (False, 0)
    assert p3_state(ws8) == (False, 0) and ws8.sql(
        "SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'"
    ) == [(0,)]

    doc = json.loads(
        ws8("--config", str(config), "--target", "standby", "release", "p3-off", *GO, "-o", "json").stdout
    )
    assert doc["target"] == "standby" and doc["applied"] is True


def test_dsn_and_target_together_are_refused(ws8: Cli) -> None:
    result = ws8("--dsn", ws8.dsn, "--target", "prod", "status")
    assert result.exit_code == 2 and "--dsn or --target, not both" in result.stderr
