"""The layers of docs/architecture.md, enforced: which package may import which, no import
cycles between modules (lazy imports included), no UI library outside the CLI, and no SQL
outside the store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "flagctl"

# A package may import itself and the packages listed (lower layers); nothing else of flagctl.
ALLOWED = {
    "errors": set(),
    "model": {"errors"},
    "config": {"errors", "model"},
    "local": {"errors", "config"},
    "rules": {"errors", "model"},
    "store": {"errors", "model", "rules", "config", "local"},
    "verify": {"errors", "model", "rules", "store"},
    "views": {"errors", "model", "rules", "store", "verify"},
    "actions": {"errors", "model", "rules", "store", "verify", "views"},
    "gate": {"errors", "model", "rules", "store", "views"},  # in application processes: no UI
    "serve": {"errors", "model", "rules", "store", "views", "gate"},  # the relay: reads, like the gate
    "cli": {
        "errors",
        "model",
        "rules",
        "store",
        "verify",
        "views",
        "actions",
        "config",
        "local",
        "serve",
        "__init__",
    },
    "__init__": set(),
    "__main__": {"cli"},
}
UI = ("typer", "rich", "click", "tabulate")


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, name: str, known: set[str] | None = None) -> set[str]:
    """Every module this one imports, at any depth of the file (lazy imports too)."""
    known = known or set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = {f"{base}.{alias.name}" for alias in node.names}
            out |= names if names & known else {base}
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {
        name: {m for m in imports(path, name, known) if m in mods and m != name}
        for name, path in mods.items()
    }


def test_each_layer_imports_only_lower_layers() -> None:
    wrong = []
    for name, targets in graph().items():
        mine = layer(name)
        for target in targets:
            other = layer(target)
            if other != mine and other not in ALLOWED[mine]:
                wrong.append(f"{name} imports {target} ({mine} may not import {other})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str], seen: set[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt == path[0]:
                cycles.append(" → ".join([*path, nxt]))
            elif nxt not in seen and nxt > path[0]:
                seen.add(nxt)
                visit(nxt, [*path, nxt], seen)

    for start in sorted(edges):
        visit(start, [start], {start})
    assert not cycles, "\n".join(cycles[:10])


def test_no_ui_library_outside_the_cli() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if layer(name) != "cli"
        for target in imports(path, name)
        if target.split(".")[0] in UI
    ]
    assert not wrong, "\n".join(wrong)


# OpenTelemetry's Logs API, through which the semantic conventions record a feature-flag
# evaluation (an event), is published in Python only as ``opentelemetry._logs`` so far.
PUBLIC_THOUGH_UNDERSCORED = {"opentelemetry._logs"}


def test_no_private_imports_from_libraries() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        for target in imports(path, name)
        if not target.startswith("flagctl")
        and target not in PUBLIC_THOUGH_UNDERSCORED
        and any(part.startswith("_") and part != "__future__" for part in target.split("."))
    ]
    assert not wrong, "\n".join(wrong)


# Behaviour the CLI only renders: the library owns it, so a Python caller gets the same
# kill, watchdog and approvals (they lived in cli/: fastkill, commands/watch, requests).
LIBRARY_ONLY = {
    ("flagctl.store.clients", "wait_acks"): "the kill's acknowledgement wait is actions.engage.await_acks",
    ("flagctl.actions.rollback", "tick"): "the watchdog's loop is actions.watchdog.watch",
    ("flagctl.store.requests", "request"): "a request to approve is actions.approve.pending",
}

KILL = {"flagctl.cli.fastkill", "flagctl.cli.commands.kill"}  # (audit verify reads drift as a view)


def test_the_cli_renders_what_the_library_decides() -> None:
    wrong = []
    for name, path in modules().items():
        if layer(name) != "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    why = LIBRARY_ONLY.get((node.module or "", alias.name))
                    if name in KILL and (node.module, alias.name) == ("flagctl.views.drift", "drift"):
                        why = "the kill's drift report is actions.engage.overwritten_drift"
                    if why:
                        wrong.append(f"{name}:{node.lineno} imports {node.module}.{alias.name}: {why}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "AuditContext":
                wrong.append(
                    f"{name}:{node.lineno} builds AuditContext(...) unchecked: use AuditContext.given"
                )
    assert not wrong, "\n".join(wrong)


# Every statement flagctl sends lives in flagctl/store/ (docs/architecture.md, "New SQL").
# Outside it, only these modules hold SQL of their own, each for its reason:
SQL_ELSEWHERE = {
    "flagctl.local": "creates the embedded server's database; it is below the store, which imports it",
    "flagctl.cli.commands.demo": "the demo's walk-through runs the example application's own SQL, as its user would",
}
# A string that starts a statement (SQL is written in capitals here; prose never starts so).
SQL_TEXT = re.compile(
    r"\s*\(?\s*(SELECT|INSERT|UPDATE|DELETE|MERGE|WITH|VALUES|TABLE|LISTEN|UNLISTEN|NOTIFY|SET|RESET|SHOW"
    r"|BEGIN|START TRANSACTION|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|CREATE|DROP|ALTER|GRANT|REVOKE"
    r"|TRUNCATE|LOCK|COPY|CALL|DO|PREPARE|EXECUTE|DECLARE|FETCH|EXPLAIN|ANALYZE|VACUUM)(?=\s|\(|;|$)"
)
# What sends SQL on a psycopg connection or cursor (``copy`` only with a statement: a
# dict's copy() takes none).
SENDING = {"execute", "executemany", "cursor", "stream"}


def sql_in(path: Path) -> list[str]:
    """Where a module sends SQL or holds a statement: each as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in SENDING or (name == "copy" and node.args):
                found.append(f"{node.lineno}: .{name}(…)")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "psycopg"
            and any(alias.name == "sql" for alias in node.names)
        ):
            found.append(f"{node.lineno}: from psycopg import sql")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("psycopg.sql"):
            found.append(f"{node.lineno}: from {node.module} import …")
        elif isinstance(node, ast.Import) and any(a.name.startswith("psycopg.sql") for a in node.names):
            found.append(f"{node.lineno}: import psycopg.sql")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_TEXT.match(node.value):
            found.append(f"{node.lineno}: {node.value.strip()[:50]!r}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_sql_lives_only_in_the_store() -> None:
    wrong = [
        f"{name} line {line}"
        for name, path in sorted(modules().items())
        if layer(name) != "store" and name not in SQL_ELSEWHERE
        for line in sql_in(path)
    ]
    assert not wrong, (
        "SQL outside flagctl/store/ (move it into the store module of its concern):\n" + "\n".join(wrong)
    )


def test_the_sql_check_sees_sql() -> None:
    """The check finds the store's statements, and each module let off still holds SQL (so
    the list shrinks when one stops needing it)."""
    mods = modules()
    store = [name for name in mods if layer(name) == "store" and sql_in(mods[name])]
    assert {"flagctl.store.db", "flagctl.store.flags", "flagctl.store.gate", "flagctl.store.proofs"} <= set(
        store
    )
    assert not [name for name in SQL_ELSEWHERE if not sql_in(mods[name])], (
        "no SQL left: drop it from SQL_ELSEWHERE"
    )


def test_the_gate_package_only_re_exports_its_client() -> None:
    """``flagctl/gate/__init__.py`` is the package's documentation and its names; the gate's
    class lives in ``gate/client.py``."""
    import flagctl.gate as gate

    tree = ast.parse((ROOT / "gate" / "__init__.py").read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    for node in body:
        reexport = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flagctl.gate.")
        listed = isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]
        assert reexport or listed, f"gate/__init__.py line {node.lineno}: {ast.unparse(node)[:60]}"
    assert gate.Gate.__module__ == "flagctl.gate.client"
    assert {"Gate", "State", "Stats", "CHANNEL"} <= set(gate.__all__)
    assert all(hasattr(gate, name) for name in gate.__all__)


# The shipped example systems (docs/runbooks/): the store serves every system alike, so
# none of its names belongs to one of them (an example's export format is a view). Names
# that are also plain words (groups, canary) are left out.
EXAMPLES = ("orca", "ws8", "phase3", "recsys", "recommender")


def test_the_store_names_no_example_system() -> None:
    wrong = []
    for name, path in sorted(modules().items()):
        if layer(name) != "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                hit = [e for e in EXAMPLES if e in node.name.lower()]
                if hit:
                    wrong.append(f"{name}:{node.lineno} {node.name} belongs to {hit[0]}: move it to views/")
    assert not wrong, "\n".join(wrong)
