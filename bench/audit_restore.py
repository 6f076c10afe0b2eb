"""`flagctl restore --as-of` and the audit sealer against long audit trails.

    python bench/audit_restore.py [--sizes 10000,100000,1000000] [--flags 10000] [--flag-rows 130000]
                                  [--runs 3] [--seconds 10] [--dsn DSN]

For each size, a throw-away WS8 database whose flag has that many old audit rows (sealed
and analysed; the time that sealing took gives the sealer's rate on a backlog), then a
moment T, then a stage move. A fresh ``flagctl restore --as-of T --dry-run`` process (the
read that rebuilds the state of T, and the plan back to it) is timed, with its peak
resident memory (``ru_maxrss`` of that child, from ``wait4``); median of --runs. The same
for a system of --flags own-table flags with --flag-rows audit rows spread over them.

Then the sealer under a sustained load: one writer inserts audited rows for --seconds, in
transactions of 100 and of 5,000 rows, each commit sealing at its end as every writer does;
it prints the rows written and sealed per second and the rows left waiting — and, for the
writer's own ceiling, the same with the seal held (no commit seals, every row left waiting).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database
from audit_scale import FLAGCTL, HISTORY, MANIFEST, flagctl, pad
from kill_wide import wide_manifest


def restore(dsn: str, moment: str, manifest: Path = MANIFEST) -> tuple[float, float]:
    """(wall ms, peak resident MB) of one fresh ``flagctl restore --as-of`` dry run."""
    env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(manifest)}
    argv = [FLAGCTL, "restore", "--as-of", moment, "--dry-run", "-o", "json", "-r", "bench"]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = (time.perf_counter() - started) * 1000
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            out.seek(0)
            raise SystemExit(f"flagctl restore: {out.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def wide(admin: str, flags: int, rows: int, runs: int) -> tuple[float, float]:
    """``restore --as-of`` over a system of ``flags`` own-table flags whose trail holds
    ``rows`` changes of them, spread evenly: (median ms, peak MB)."""
    with throwaway_database(admin) as dsn, tempfile.TemporaryDirectory(prefix="flagctl-bench-") as tmp:
        manifest = Path(tmp) / "flagctl.yaml"
        manifest.write_text(wide_manifest(flags))
        env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(manifest)}
        subprocess.run([FLAGCTL, "db", "init"], env=env, check=True, capture_output=True)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason)"
                " SELECT 'bench', 'sql.update', 'wide', 'f' || (i %% %s), 'global', 'flagctl.flag_state',"
                " 'true', 'false', 'old' FROM generate_series(1, %s) AS i",
                (flags, rows),
            )
            conn.execute("VACUUM ANALYZE flagctl.audit")
            (moment,) = conn.execute("SELECT now()").fetchone() or (None,)
        samples = [restore(dsn, moment.isoformat(), manifest) for _ in range(runs)]
    return statistics.median(r[0] for r in samples), max(r[1] for r in samples)


def sustained(admin: str, batch: int, seconds: float, held: bool = False) -> tuple[float, float, int]:
    """One writer inserting audited rows in transactions of ``batch`` rows for ``seconds``:
    (rows written per second, rows sealed per second, rows left unsealed). ``held``: the
    seal held meanwhile, so no commit seals (what the writer does without the sealer)."""
    with throwaway_database(admin) as dsn:
        pad(dsn, 0)
        written = 0
        with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as holder:
            if held:
                holder.execute("SELECT flagctl.audit_seal(true, 0)")
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                conn.execute(HISTORY, (batch,))
                written += batch
            elapsed = time.perf_counter() - started
            holder.rollback()
            (sealed,) = conn.execute("SELECT count(*) FROM flagctl.audit_seal").fetchone() or (0,)
            (waiting,) = conn.execute("SELECT rows FROM flagctl.audit_backlog()").fetchone() or (0,)
    return written / elapsed, sealed / elapsed, int(waiting)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flags", type=int, default=10_000, help="flags of the wide system (0: none)")
    parser.add_argument("--flag-rows", type=int, default=130_000, help="audit rows of the wide system")
    parser.add_argument("--dsn")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    compile_flagctl()
    admin = admin_dsn(args.dsn)
    print(f"restore --as-of --dry-run, median of {args.runs} fresh processes; the sealer on the backlog")
    print(f"  {'rows':>9}  {'restore ms':>10}  {'peak MB':>7}  {'sealed rows/s':>13}")
    first = None
    for rows in sizes:
        with throwaway_database(admin) as dsn:
            sealing = pad(dsn, rows)
            with psycopg.connect(dsn, autocommit=True) as conn:
                (moment,) = conn.execute("SELECT now()").fetchone() or (None,)
            flagctl(dsn, "stage", "set", "p3", "canary", "-r", "bench", "-y")
            runs = [restore(dsn, moment.isoformat()) for _ in range(args.runs)]
        ms = statistics.median(r[0] for r in runs)
        mb = max(r[1] for r in runs)
        first = first or ms
        rate = rows / sealing
        print(f"  {rows:>9,}  {ms:>10.1f}  {mb:>7.1f}  {rate:>13,.0f}   restore ×{ms / first:.2f}")
    if args.flags:
        ms, mb = wide(admin, args.flags, args.flag_rows, args.runs)
        print(
            f"  {args.flags:,} flags, {args.flag_rows:,} rows of them: restore {ms:.1f} ms, peak {mb:.1f} MB"
        )
    print(f"one writer for {args.seconds:.0f} s, each transaction sealing at its commit")
    for batch in (100, 5000):
        for held in (False, True):
            wrote, sealed, waiting = sustained(admin, batch, args.seconds, held)
            print(f"  {batch:>5} rows a transaction{' (seal held)' if held else '':12}: wrote {wrote:8,.0f} rows/s,"
                  f" sealed {sealed:8,.0f} rows/s, {waiting:,} left unsealed")  # fmt: skip


if __name__ == "__main__":
    main()
