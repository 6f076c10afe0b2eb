"""Every key the manifest validator accepts, as a path (``flags.NAME.type``), read from
the record types themselves — so documentation checked against it cannot drift."""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from flagctl.model.manifest import ManifestModel


def key_paths(model: type[Any] = ManifestModel, prefix: str = "") -> set[str]:
    found: set[str] = set()
    hints = get_type_hints(model, include_extras=True)
    alias = model.__pydantic_config__.get("alias_generator") or (lambda name: name)
    for field in dataclasses.fields(model):
        path = f"{prefix}{alias(field.name)}"
        found.add(path)
        found |= _nested(hints[field.name], path)
    return found


def _nested(annotation: Any, path: str) -> set[str]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _nested(args[0], path)
    if origin in (Union, types.UnionType):
        return set().union(*(_nested(arg, path) for arg in args))
    if origin is dict:
        return _nested(args[1], f"{path}.NAME")
    if origin is list:
        return _nested(args[0], f"{path}[]")
    if inspect.isclass(annotation) and dataclasses.is_dataclass(annotation):
        return key_paths(annotation, f"{path}.")
    return set()
