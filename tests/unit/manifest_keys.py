"""Every key the manifest validator accepts, as a path (``flags.NAME.type``), read from
the pydantic models themselves — so documentation checked against it cannot drift."""

from __future__ import annotations

import inspect
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from flagctl.model.manifest import ManifestModel


def key_paths(model: type[BaseModel] = ManifestModel, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        found.add(path)
        found |= _nested(field.annotation, path)
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
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return key_paths(annotation, f"{path}.")
    return set()
