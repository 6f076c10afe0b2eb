"""``/metrics`` of ``flagctl serve``, in the Prometheus text format (prometheus_client):
per system, the snapshot's age and sequence, readiness, evaluations, requests, 304s,
subscribers and how many of them have not fetched the current state, pushes, reloads,
notifications and reconnects; and the requests refused for want of a token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from flagctl.serve.relay import Relay


class _Collector:
    def __init__(self, relays: list[Relay], unauthorized: int) -> None:
        self.relays = relays
        self.unauthorized = unauthorized

    def collect(self) -> Iterator[Metric]:
        for kind, name, doc, read in SERIES:
            family = (GaugeMetricFamily if kind == "gauge" else CounterMetricFamily)(
                f"flagctl_serve_{name}", doc, labels=["system"]
            )
            for relay in self.relays:
                value = read(relay)
                if value is not None:
                    family.add_metric([relay.system], float(value))
            yield family
        unauthorized = CounterMetricFamily(
            "flagctl_serve_unauthorized", "Requests refused without a valid token"
        )
        unauthorized.add_metric([], self.unauthorized)
        yield unauthorized


# (kind, name, help, how to read it of a relay: None leaves the system out)
SERIES: list[tuple[str, str, str, Callable[[Relay], float | None]]] = [
    ("gauge", "ready", "1 when the system's snapshot is within its staleness bound", lambda r: r.fresh()),
    ("gauge", "snapshot_age_seconds", "Seconds since the snapshot was last read or confirmed current",
     lambda r: r.readiness()["age_seconds"]),
    ("gauge", "sequence", "The change sequence of the snapshot served", lambda r: r.seq),
    ("gauge", "subscribers", "Open push streams", lambda r: r.subscribers),
    ("gauge", "subscribers_behind", "Named clients on a push stream that have not fetched the current state",
     lambda r: r.behind_count()),
    ("counter", "evaluations", "Flags resolved (a bulk request counts each)", lambda r: r.counters.evaluations),
    ("counter", "requests", "OFREP requests answered", lambda r: r.counters.requests),
    ("counter", "not_modified", "Bulk requests answered 304 Not Modified", lambda r: r.counters.not_modified),
    ("counter", "pushes", "Change events written to push streams", lambda r: r.counters.pushed),
    ("counter", "reloads", "Snapshots read from PostgreSQL", lambda r: r.stats.reloads),
    ("counter", "notifications", "Change notifications received", lambda r: r.stats.notifications),
    ("counter", "reconnects", "Reconnections to PostgreSQL", lambda r: r.stats.reconnects),
    ("counter", "acks", "Acknowledgements written for clients behind the relay", lambda r: r.counters.acks_written),
]  # fmt: skip


def exposition(relays: list[Relay], unauthorized: int) -> tuple[bytes, str]:
    """The metrics document and its content type (``unauthorized``: requests refused for
    want of a valid token)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(relays, unauthorized))
    return generate_latest(registry), CONTENT_TYPE_LATEST
