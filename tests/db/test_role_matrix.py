"""The role matrix of docs/audit.md ("Who may do what"), tried cell by cell: for each role
and action, a LOGIN user given only that role with `flagctl db grant` does the action through
flagctl and in a SQL session, and the outcome must be the table's. The table is read from
the document itself, so the document cannot drift from what PostgreSQL enforces."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
ROLES = ("viewer", "release", "security", "ops", "admin")
GO = ("-r", "matrix", "-y")


def matrix() -> dict[str, dict[str, tuple[str, str]]]:
    """action → role → (through flagctl, through psql), each ✓, ✗ or —."""
    text = DOC.read_text()
    section = text[text.index("## Who may do what") :]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert tuple(header[1:]) == ROLES, header
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for line in rows[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set(cells[0]) <= {"-", " "}:
            continue
        marks = {}
        for role, cell in zip(ROLES, cells[1:], strict=True):
            flagctl, psql = re.findall("[✓✗—]", cell)
            marks[role] = (flagctl, psql)
        found[cells[0]] = marks
    return found


@contextmanager
def as_role(cli: Cli, role: str) -> Iterator[tuple[str, str, Cli]]:
    """A fresh LOGIN user with only this flagctl role (and, as a DBA would give any operator,
    SELECT on the application's tables the guardrails read): its name, DSN and CLI."""
    name = f"m_{uuid.uuid4().hex[:8]}"
    cli.sql(f"CREATE ROLE {name} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    try:
        granted = cli("db", "grant", role, name)
        assert granted.exit_code == 0, granted.stderr
        dsn = cli.dsn.replace("user=postgres", f"user={name}")
        yield name, dsn, Cli(dsn, cli.manifest, admin_dsn=cli.dsn)
    finally:
        cli.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


def allowed_in_psql(dsn: str, *statements: str) -> bool:
    """Whether the database lets this user run these statements (in one transaction, rolled
    back): refused means a privilege error or one of flagctl's guards raising."""
    try:
        with psycopg.connect(dsn) as conn:
            for statement in statements:
                conn.execute(statement.encode())
            conn.rollback()
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException):
        return False
    return True


def declared(action: str) -> str:
    return f"SELECT flagctl.begin_change('{action}', 'matrix', 'matrix', NULL, NULL)"


# How each action is tried: (through flagctl: exit code 0 or not; through psql: statements).
# ``None`` where the table says "—". Each gets the owner's CLI (for setup) and the user's.
FlagctlTry = Callable[[Cli, Cli, Path], int]  # the exit code


def _read(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("status").exit_code or user("audit", "log", "--limit", "1").exit_code)


def _stage(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("stage", "set", "p3", "canary", *GO).exit_code)


def _kill(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("kill", "p3-off", *GO).exit_code)


def _under_kill(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("stage", "rollback", "p3", *GO).exit_code)


def _break_locks(owner: Cli, user: Cli, tmp: Path) -> int:
    owner("stage", "set", "p3", "canary", *GO)
    return int(user("kill", "p3-off", "--break-locks", *GO).exit_code)


def _freeze(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("freeze", "set", *GO).exit_code)


def _rollout(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("rollout", "start", "p3", *GO).exit_code)


def _token(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("tokens", "create", "matrix-app", *GO).exit_code)


def _runner(owner: Cli, user: Cli, tmp: Path) -> int:
    return int(user("run", "--once", *GO).exit_code)


def _publish(owner: Cli, user: Cli, tmp: Path) -> int:
    edited = tmp / "flagctl.yaml"
    edited.write_text(Path(user.manifest).read_text() + "\n# a new version\n")
    return int(user("manifest", "publish", *GO, FLAGCTL_MANIFEST=str(edited)).exit_code)


def _gate(owner: Cli, user: Cli, tmp: Path) -> int:
    from flagctl.gate import Gate

    gate = Gate(user.dsn, system="phase3", application="matrix-gate")
    try:
        gate.wait_ready()
        mine = "SELECT count(*) FROM flagctl.clients WHERE application = 'matrix-gate' AND db_user = %s"
        return 0 if owner.sql(mine, (user.dsn.split("user=")[1].split()[0],)) == [(1,)] else 5
    finally:
        gate.close()


CANARY = "UPDATE p3_feature_state SET enabled = true, rollout_percent = 1"
OFF = "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0"
CANARY_FN = (
    "SELECT count(*) FROM flagctl.write_bound('phase3',"
    """ '[{"flag": "p3_advisory", "set": {"enabled": true, "rollout_percent": 1}}]')"""
)
UNDER_KILL = "stage move back under a kill (the stage beneath it; in psql: `flagctl.move_base`)"
KILL = "kill (in psql: `flagctl.kill`)"
KILL_BY_HAND = "kill by hand: `UPDATE` of the flag, declared as a kill"
BASE_TO_DARK = (
    "SELECT flagctl.move_base('phase3', 'p3-off', '{\"p3_advisory\": {\"enabled\": false, \"percent\": 0}}',"
    ' \'{"p3_advisory": {"enabled": false, "percent": 0}}\')'
)
RECORD_BY_HAND = "INSERT INTO flagctl.freeze (system, reason) VALUES ('phase3', 'm')"
PUBLISH_AGAIN = (
    "SELECT flagctl.publish_manifest(system, source || E'\\n# again\\n', catalogue, 'matrix', 'matrix', NULL)"
    " FROM flagctl.catalogue WHERE system = 'phase3' ORDER BY version DESC LIMIT 1"
)
TRIES: dict[str, tuple[FlagctlTry | None, tuple[str, ...]]] = {
    "read status, audit, catalogue": (
        _read,
        (
            "SELECT count(*) FROM flagctl.audit",
            "SELECT count(*) FROM flagctl.catalogue",
            "SELECT * FROM p3_feature_state",
        ),
    ),
    "plain `UPDATE` of a flag (no declared change)": (None, (CANARY,)),
    "stage move (in psql: `flagctl.write_bound`)": (_stage, (declared("stage.set"), CANARY_FN)),
    "stage move by hand: `UPDATE` of the flag, declared as a stage move": (
        None,
        (declared("stage.set"), CANARY),
    ),
    KILL: (_kill, ("SELECT count(*) FROM flagctl.kill('phase3', 'p3-off', 'matrix')",)),
    KILL_BY_HAND: (None, (declared("kill"), OFF)),
    UNDER_KILL: (_under_kill, (declared("stage.set"), BASE_TO_DARK)),
    "end what blocks a waiting kill (`--break-locks`, `blockers_of`)": (
        _break_locks,
        ("SELECT * FROM flagctl.blockers_of(pg_backend_pid())",),
    ),
    "freeze (in psql: `flagctl.freeze_add`)": (
        _freeze,
        (declared("freeze.set"), "SELECT flagctl.freeze_add('phase3', NULL, NULL)"),
    ),
    "write flagctl's records by hand (`INSERT INTO flagctl.freeze`, declared)": (
        None,
        (declared("freeze.set"), RECORD_BY_HAND),
    ),
    "publish the manifest": (_publish, (PUBLISH_AGAIN,)),
    "start a rollout (in psql: `flagctl.rollout_start`)": (
        _rollout,
        (declared("rollout.start"), "SELECT flagctl.rollout_start('phase3', 'p3', 'full', 'dark')"),
    ),
    "run rollouts (`flagctl run`; in psql: `flagctl.runner_beat`)": (
        _runner,
        ("SELECT flagctl.runner_beat('phase3', 'h', 1, interval '30s')",),
    ),
    "register a gate (its own row)": (_gate, ("SELECT flagctl.client_register('phase3', 'h', 1, 'matrix')",)),
    "create a `flagctl serve` token (in psql: `flagctl.token_create`)": (
        _token,
        (declared("tokens.create"), "SELECT flagctl.token_create('phase3', 'matrix', repeat('0', 64))"),
    ),
    "write a token by hand (`INSERT INTO flagctl.token`, declared)": (
        None,
        (
            declared("tokens.create"),
            "INSERT INTO flagctl.token (system, name, hash, created_by) VALUES ('phase3', 'm', repeat('0', 64), 'm')",
        ),
    ),
    "register a client behind its own relay (`flagctl serve`; in psql: `flagctl.client_register_behind`)": (
        None,
        (
            "SELECT flagctl.client_register_behind(flagctl.client_register('phase3', 'h', 1, 'relay'), 'pod', 'app')",
        ),
    ),
}
CELLS = [(action, role) for action in matrix() for role in ROLES]


def test_the_table_lists_exactly_the_actions_tried() -> None:
    assert set(matrix()) == set(TRIES)


@pytest.mark.parametrize(
    ("action", "role"), CELLS, ids=[f"{re.sub(r'[^a-z]+', '_', a)[:20].strip('_')}-{r}" for a, r in CELLS]
)
def test_each_cell_of_the_role_matrix(ws8: Cli, tmp_path: Path, action: str, role: str) -> None:
    expected_flagctl, expected_psql = matrix()[action][role]
    through_flagctl, statements = TRIES[action]
    with as_role(ws8, role) as (_, dsn, user):
        if action in (KILL, KILL_BY_HAND, UNDER_KILL):  # something for the kill to turn off
            assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
        if action == UNDER_KILL:  # …and the kill that holds it, the stage beneath it to move
            assert ws8("kill", "p3-off", *GO).exit_code == 0
        assert ("✓" if allowed_in_psql(dsn, *statements) else "✗") == expected_psql, (
            f"psql: {action} as {role}"
        )
        if through_flagctl is None:
            assert expected_flagctl == "—"
            return
        code = through_flagctl(ws8, user, tmp_path)
        assert code in (0, 5), f"flagctl: {action} as {role} exited {code}: neither done nor refused"
        assert ("✓" if code == 0 else "✗") == expected_flagctl, f"flagctl: {action} as {role}"
