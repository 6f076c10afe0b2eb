"""Records read from YAML, declared without importing pydantic.

The manifest's and the profiles' records are plain frozen dataclasses: cheap to import and
to load from the manifest cache, so a command that finds its manifest cached (``flagctl
kill``) never imports pydantic. Their shape is still checked by pydantic: ``validate``
builds a validator for a record type the first time it is asked to (the only place pydantic
is imported), reading the dataclass fields and the ``Rule`` notes on them — pydantic's
``Field`` arguments, applied then. Unknown keys are refused (``extra="forbid"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

T = TypeVar("T")


class Rule:
    """A constraint on a field, given as pydantic ``Field`` arguments (``ge``, ``pattern``,
    ``strict``, ``min_length``, ``discriminator``), applied when a validator is built."""

    __slots__ = ("arguments",)

    def __init__(self, **arguments: Any) -> None:
        self.arguments = arguments

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic import Field

        return handler(Annotated[source, Field(**self.arguments)])

    def __repr__(self) -> str:
        return f"Rule({', '.join(f'{k}={v!r}' for k, v in self.arguments.items())})"


@dataclass(frozen=True, kw_only=True)
class Record:
    """Base of every record read from YAML: no unknown keys."""

    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid"}


NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
Name = Annotated[str, Rule(pattern=NAME)]
Percent = Annotated[int, Rule(ge=0, le=100, strict=True)]
StrictBool = Annotated[bool, Rule(strict=True)]
StrictInt = Annotated[int, Rule(strict=True)]


class Invalid(ValueError):
    """Data that does not fit a record: pydantic's error list (``loc``, ``type``, ``msg``, ``input``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(first_error(errors))
        self.errors = errors


def validate(kind: type[T], data: Any) -> T:
    """``data`` (from YAML or JSON) checked against a record type and built into it; raises
    ``Invalid`` listing every problem."""
    from pydantic import ValidationError

    key: object = kind  # a class is hashable, as the cache needs; mypy does not see it in type[T]
    validator: TypeAdapter[T] = _validator(key)
    try:
        return validator.validate_python(data)
    except ValidationError as exc:
        raise Invalid([_as_key_error(dict(err)) for err in exc.errors()]) from None


def _as_key_error(err: dict[str, Any]) -> dict[str, Any]:
    """A dataclass's unknown argument is a record's unknown key: say it as for any mapping."""
    if err["type"] == "unexpected_keyword_argument":
        return {**err, "type": "extra_forbidden", "msg": "Extra inputs are not permitted"}
    return err


@cache
def _validator(kind: Any) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def first_error(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid"
    err = errors[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
