"""The OpenFeature Remote Evaluation Protocol (OFREP, v1) as ``flagctl serve`` answers it:
requests parsed, resolutions (``flagctl.gate.resolve``) turned into the protocol's
documents, and the bulk response's ETag. Pure functions: no HTTP, no I/O.

- ``POST /ofrep/v1/evaluate/flags/{key}``: 200 with ``key``, ``value``, ``reason``,
  ``variant``, ``metadata``; 404 FLAG_NOT_FOUND; 400 TARGETING_KEY_MISSING, INVALID_CONTEXT
  or PARSE_ERROR.
- ``POST /ofrep/v1/evaluate/flags``: 200 with every flag of the system (each a success or
  an error document), and an ETag; 304 when ``If-None-Match`` names the current one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flagctl.gate.resolve import TARGETING_KEY_MISSING, Resolution

PARSE_ERROR, INVALID_CONTEXT = "PARSE_ERROR", "INVALID_CONTEXT"


class BadRequest(Exception):
    """A request the protocol answers with 400: its error code and details."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Context:
    """An evaluation context: the targeting key and the other attributes."""

    targeting_key: str | None
    attributes: dict[str, Any]

    def fingerprint(self) -> str:
        """A digest of the context, for the bulk ETag: a cached answer is for one context."""
        text = json.dumps(
            [self.targeting_key, self.attributes], sort_keys=True, separators=(",", ":"), default=str
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse(body: bytes) -> Context:
    """The evaluation context of a request body (``{"context": {...}}``; empty: no context)."""
    if not body.strip():
        return Context(None, {})
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(PARSE_ERROR, f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(PARSE_ERROR, 'the body must be a JSON object: {"context": {...}}')
    context = document.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise BadRequest(INVALID_CONTEXT, "context must be a JSON object")
    attributes = dict(context)
    key = attributes.pop("targetingKey", None)
    if key is not None and not isinstance(key, str):
        raise BadRequest(INVALID_CONTEXT, "targetingKey must be a string")
    return Context(key or None, attributes)


def success(found: Resolution) -> dict[str, Any]:
    return {
        "key": found.key,
        "value": found.value,
        "reason": found.reason,
        "variant": found.variant,
        "metadata": found.metadata,
    }


def failure(found: Resolution) -> dict[str, Any]:
    return {"key": found.key, "errorCode": found.error, "errorDetails": found.message or found.error}


def single(found: Resolution) -> tuple[int, dict[str, Any]]:
    """The status and document of a single-flag evaluation."""
    if found.error is None:
        return 200, success(found)
    if found.error == TARGETING_KEY_MISSING:
        return 400, failure(found)
    return 404, failure(found)


def bulk(found: list[Resolution]) -> dict[str, Any]:
    """The bulk evaluation document: every flag, each a success or an error."""
    return {"flags": [success(f) if f.error is None else failure(f) for f in found], "metadata": {}}


def etag(version: str, context: Context) -> str:
    """The bulk ETag: the state's version (seq.digest, as a push event carries it) and the
    context's digest — the answer is a function of the two."""
    return f'"{version}.{context.fingerprint()}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names this ETag (weak or strong, or among several)."""
    if not if_none_match:
        return False
    given = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return tag in given or "*" in given
