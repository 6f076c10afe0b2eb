"""YAML reading that reports line and column, and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys; in a manifest that is how a flag
entry pasted twice quietly changes meaning, so a duplicate is an error here.
Booleans follow YAML 1.2 (only true/false): under YAML 1.1 a stage named ``off`` or
a value ``no`` would silently become a boolean.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flagctl.errors import InvalidFile, ManifestError

if TYPE_CHECKING:
    import yaml

_BOOL = "tag:yaml.org,2002:bool"


@cache
def _strict_loader(fast: bool = True) -> type[yaml.SafeLoader]:
    """The loader, built on first use (PyYAML is imported only by a command that parses YAML).
    ``fast``: on libyaml's parser when PyYAML has it — the pure-Python scanner took seconds
    for a manifest of 10,000 flags — with the same constructors and resolvers; a document it
    refuses is parsed again by the Python one, whose messages are the ones reported."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if fast else yaml.SafeLoader

    class StrictLoader(base):  # type: ignore[misc]
        pass

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    StrictLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    StrictLoader.add_implicit_resolver(
        _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return StrictLoader


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    import yaml

    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


def read_utf8(path: Path, error: type[InvalidFile] = ManifestError) -> str:
    """A file's text; bytes that are not UTF-8 are ``error`` naming where (FileNotFoundError
    and other OS errors pass through for the caller's own message)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(str(path), [f"not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line}"],
                    f"save the {error.kind} as UTF-8") from None  # fmt: skip


def load_yaml(text: str, path: str, error: type[InvalidFile] = ManifestError) -> Any:
    """Parse YAML text; a syntax error becomes ``error`` (the file's kind) with line and column."""
    import yaml

    try:
        return yaml.load(text, Loader=_strict_loader())
    except (yaml.YAMLError, RecursionError):
        pass  # said below, as the Python parser says it
    try:
        return yaml.load(text, Loader=_strict_loader(fast=False))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise error(path, [f"{where}{problem}"], f"fix the YAML syntax of this {error.kind}") from None
    except yaml.YAMLError as exc:
        raise error(path, [f"malformed YAML: {exc}"]) from None
    except RecursionError:
        raise error(path, ["nested too deeply to be a real " + error.kind]) from None
