"""A guardrail read from Prometheus: an instant query over its HTTP API.

``GET {url}/api/v1/query?query=…&timeout=…``, with the guardrail's ``timeout`` both as the
HTTP timeout and as Prometheus' own. The answer is one number or none (a ``Reading``), which
``verify.guardrails`` judges by the same rules as a SQL guardrail's first row:

- a vector of one sample, or a scalar: its value;
- an empty vector: **no_data** (no series matched — an absent metric is not a healthy one);
- more than one series: **error** (the bound is for one value: aggregate the query);
- NaN or ±Inf, a range vector, a refused query, an HTTP error, a refused connection or a
  timeout: **error**, with what went wrong and which server said it.

``samples:``, a second query, gives the sample count ``min_samples`` needs: its one value,
rounded down (``increase()`` extrapolates, so counts are rarely whole); an empty vector is
0 samples. Only the standard library: no HTTP client to install.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit, urlunsplit
from urllib.request import Request, urlopen

from flagctl.errors import UsageError
from flagctl.model.manifest import is_http_url

if TYPE_CHECKING:
    from flagctl.model.manifest import PrometheusQuery

PROMETHEUS_URL = "FLAGCTL_PROMETHEUS_URL"
MAX_ANSWER = 16 * 1024 * 1024  # bytes: a guardrail's answer is one number, not a dump


class QueryFailed(Exception):
    """The query gave no usable value; the message says why, for an operator."""


@dataclass(frozen=True)
class Reading:
    value: float | None  # None: an empty vector, no series matched
    samples: int | None = None  # the samples query's value, when there is one


def read(source: PrometheusQuery, timeout: float, environ: Mapping[str, str]) -> Reading:
    """The guardrail's value (and sample count) within ``timeout`` seconds in all; raises
    ``QueryFailed`` for whatever the server or the network did."""
    url = prometheus_url(source.url, environ)  # none at all is the operator's to fix: exit 2
    deadline = time.perf_counter() + timeout
    value = instant_value(url, source.query, deadline, "the query")
    if value is None or source.samples is None:
        return Reading(value)
    count = instant_value(url, source.samples, deadline, "the samples query")
    if count is not None and count < 0:
        raise QueryFailed(
            f"prometheus at {shown_url(url)}: the samples query returned {count:g}, not a count"
        )
    return Reading(value, 0 if count is None else math.floor(count))


def prometheus_url(given: str | None, environ: Mapping[str, str]) -> str:
    """The server a guardrail asks, in this order:
    1. its own ``prometheus.url`` in the manifest (checked with the manifest);
    2. ``FLAGCTL_PROMETHEUS_URL``.
    Neither, or an environment value that is not an http(s) URL, is the operator's to fix
    (a usage error, exit 2), not a guardrail's verdict."""
    if given:
        return given
    url = environ.get(PROMETHEUS_URL, "").strip()
    if not url:
        raise UsageError(
            "a prometheus guardrail needs the server's URL",
            f"give prometheus.url: in the manifest, or set {PROMETHEUS_URL}=http://HOST:9090",
        )
    if not is_http_url(url):
        raise UsageError(
            f"{PROMETHEUS_URL}: expected an http:// or https:// URL (e.g. http://prometheus:9090), got {url!r}"
        )
    return url


def instant_value(url: str, query: str, deadline: float, what: str = "the query") -> float | None:
    """The one value of an instant query (None: an empty vector); raises ``QueryFailed``."""
    where = f"prometheus at {shown_url(url)}"
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise QueryFailed(f"{where}: no time left for {what} within the guardrail's timeout")
    answer = _get(url, query, remaining, where)
    if answer.get("status") != "success":
        kind = answer.get("errorType") or "error"
        raise QueryFailed(f"{where}: {what} failed: {kind}: {answer.get('error') or answer.get('status')}")
    data = answer.get("data")
    if not isinstance(data, dict):
        raise QueryFailed(f"{where}: not a Prometheus query answer (no data)")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result, where, what)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise QueryFailed(
                f"{where}: {what} returned {len(result)} series; aggregate it to one, "
                f"e.g. with sum() or max()"
            )
        sample = result[0]
        return _number(sample.get("value") if isinstance(sample, dict) else None, where, what)
    if kind == "matrix":
        raise QueryFailed(
            f"{where}: {what} returned a range vector; give an instant query "
            f"(e.g. wrap a [5m] selector in rate() or max_over_time())"
        )
    raise QueryFailed(f"{where}: {what} returned a {kind}, not a number")


def _get(url: str, query: str, timeout: float, where: str) -> dict[str, Any]:
    address = url.rstrip("/") + "/api/v1/query?" + urlencode({"query": query, "timeout": f"{timeout:.3f}"})
    request = Request(address, headers={"Accept": "application/json", "User-Agent": "flagctl"})
    try:
        with urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_ANSWER + 1)
    except HTTPError as exc:  # Prometheus explains a refused query in JSON (400 bad_data, 422, 503)
        refused = _api_error(exc)
        if refused is None:
            raise QueryFailed(f"{where}: HTTP {exc.code} {exc.reason}".rstrip()) from None
        return refused
    except URLError as exc:
        raise QueryFailed(f"{where}: {_reason(exc.reason, timeout)}") from None
    except TimeoutError:
        raise QueryFailed(f"{where}: no answer within {timeout:g}s (the guardrail's timeout)") from None
    except (OSError, ValueError) as exc:  # a connection reset mid-answer, a malformed URL
        raise QueryFailed(f"{where}: {exc}") from None
    except HTTPException as exc:  # not HTTP at all (another service on that port), a cut answer
        raise QueryFailed(f"{where}: not an HTTP answer ({type(exc).__name__})") from None
    if len(body) > MAX_ANSWER:
        raise QueryFailed(f"{where}: the answer is larger than {MAX_ANSWER // 1024 // 1024} MB")
    try:
        answer = json.loads(body)
    except ValueError:
        raise QueryFailed(f"{where}: not a Prometheus API answer (not JSON)") from None
    if not isinstance(answer, dict):
        raise QueryFailed(f"{where}: not a Prometheus API answer")
    return answer


def _api_error(exc: HTTPError) -> dict[str, Any] | None:
    """The API's own error answer in an HTTP error's body, if that is what it holds."""
    try:
        answer = json.loads(exc.read(64 * 1024))
    except (OSError, ValueError):
        return None
    if isinstance(answer, dict) and answer.get("status") == "error":
        return answer
    return None


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g}s (the guardrail's timeout)"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[0].lower() + reason.strerror[1:]
    return str(reason)


def _number(pair: object, where: str, what: str) -> float:
    """A sample's value, ``[timestamp, "text"]``: a finite number, or an error."""
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
        raise QueryFailed(f"{where}: {what} returned a sample that is not [time, value]")
    try:
        value = float(pair[1])
    except ValueError:
        raise QueryFailed(f"{where}: {what} returned {pair[1]!r}, not a number") from None
    if not math.isfinite(value):
        raise QueryFailed(f"{where}: {what} returned {pair[1]} (e.g. a division by zero); no value to judge")
    return value


def shown_url(url: str) -> str:
    """The URL fit to print: never a password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
