"""OpenTelemetry feature_flag.evaluation events from the gate and from the OpenFeature
provider, read back from the real OpenTelemetry SDK's in-memory exporter; and a gate with
no hook decides through its plain methods (no work for hooks at all)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from flagctl.errors import UsageError
from flagctl.gate import Gate
from flagctl.gate.openfeature import FlagctlProvider
from flagctl.gate.telemetry import EVENT, EvaluationEvents
from flagctl.model.manifest import parse_manifest
from flagctl.model.scopes import GLOBAL
from flagctl.model.values import Rollout
from flagctl.rules.kills import Engaged
from flagctl.store.flags import Snapshot
from flagctl.store.gate import Check

MANIFEST = parse_manifest(
    """
version: 1
system: shop
flags:
  checkout: {type: rollout, scopes: [workspace]}
  provider: {type: enum, values: [stripe, adyen]}
kill_switches:
  stop: {level: 1, set: {checkout: {enabled: false}}}
""",
    "m.yaml",
)


class Ticks:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def gate_at(seq: int, engaged: list[Engaged] = (), clock: Ticks | None = None) -> Gate:  # type: ignore[assignment]
    gate = Gate("", manifest=MANIFEST, register=False, start=False, clock=clock or Ticks())
    snapshot = Snapshot(globals={"checkout": Rollout(True, 50), "provider": "adyen"})
    gate.apply(
        MANIFEST, snapshot, list(engaged), {"checkout": {"workspace:7": "allow"}}, seq, "d", Check("", ())
    )
    return gate


@pytest.fixture
def exported() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def events(exporter: InMemoryLogRecordExporter) -> list[dict[str, Any]]:
    found = []
    for record in exporter.get_finished_logs():
        assert record.log_record.event_name == EVENT
        found.append(dict(record.log_record.attributes or {}))
    exporter.clear()
    return found


def test_a_gate_without_a_hook_decides_through_its_plain_methods() -> None:
    gate = gate_at(3)
    assert gate.enabled.__func__ is Gate.enabled and gate.value.__func__ is Gate.value  # type: ignore[attr-defined]
    gate.add_hook(lambda evaluation: None)
    assert gate.enabled.__func__ is not Gate.enabled  # type: ignore[attr-defined]
    assert gate_at(3).enabled.__func__ is Gate.enabled  # type: ignore[attr-defined]  # that gate only


def test_gate_evaluations_are_feature_flag_events(
    exported: tuple[LoggerProvider, InMemoryLogRecordExporter],
) -> None:
    provider, exporter = exported
    ticks = Ticks()
    gate = gate_at(41, clock=ticks)
    gate.add_hook(EvaluationEvents(provider))
    on = next(s for s in range(100) if gate.enabled("checkout", s))
    events(exporter)
    assert gate.enabled("checkout", on) is True
    assert gate.enabled("checkout", "x", ["workspace:7"]) is True
    assert gate.value("provider") == "adyen"
    split, allowed, value = events(exporter)
    assert split == {
        "feature_flag.key": "checkout",
        "feature_flag.provider.name": "flagctl",
        "feature_flag.set.id": "shop",
        "feature_flag.version": "41",
        "feature_flag.context.id": str(on),
        "feature_flag.result.variant": "on",
        "feature_flag.result.value": True,
        "feature_flag.result.reason": "split",
    }
    assert allowed["feature_flag.result.reason"] == "targeting_match"
    assert value["feature_flag.result.variant"] == "adyen" and "feature_flag.result.value" not in value
    assert "feature_flag.context.id" not in value

    with pytest.raises(UsageError):
        gate.enabled("nope", "u-1")
    (error,) = events(exporter)
    assert (error["feature_flag.result.reason"], error["error.type"]) == ("error", "flag_not_found")
    assert "unknown flag" in error["feature_flag.error.message"]

    ticks.now += 31  # stale: the rollout fails closed, the config value keeps its last value
    assert gate.enabled("checkout", on) is False and gate.value("provider") == "adyen"
    assert [
        (e["feature_flag.result.variant"], e["feature_flag.result.reason"]) for e in events(exporter)
    ] == [
        ("off", "stale"),
        ("adyen", "stale"),
    ]


def test_a_killed_flag_is_disabled(exported: tuple[LoggerProvider, InMemoryLogRecordExporter]) -> None:
    provider, exporter = exported
    kill = Engaged("stop", GLOBAL, 1, 1, datetime(2026, 1, 1, tzinfo=UTC), None, "u", "r", {}, {},
                   MANIFEST.switches["stop"])  # fmt: skip
    gate = gate_at(42, [kill])
    gate.add_hook(EvaluationEvents(provider))
    assert gate.enabled("checkout", "u-1") is False
    (event,) = events(exporter)
    assert (event["feature_flag.result.reason"], event["feature_flag.result.variant"]) == ("disabled", "off")


def test_openfeature_evaluations_are_feature_flag_events(
    exported: tuple[LoggerProvider, InMemoryLogRecordExporter],
) -> None:
    provider, exporter = exported
    gate = gate_at(7)
    api.set_provider_and_wait(FlagctlProvider(gate=gate, telemetry=EvaluationEvents(provider)))
    try:
        client = api.get_client()
        staff = EvaluationContext("u-9", {"workspace": "7"})
        assert client.get_boolean_value("checkout", False, staff) is True
        assert client.get_string_value("provider", "stripe", staff) == "adyen"
        assert client.get_boolean_value("nope", True, staff) is True  # unknown: the caller's default
        allowed, value, missing = events(exporter)
    finally:
        api.clear_providers()
    assert allowed == {
        "feature_flag.key": "checkout",
        "feature_flag.provider.name": "flagctl",
        "feature_flag.set.id": "shop",
        "feature_flag.version": "7",
        "feature_flag.context.id": "u-9",
        "feature_flag.result.variant": "on",
        "feature_flag.result.value": True,
        "feature_flag.result.reason": "targeting_match",
    }
    assert (value["feature_flag.result.variant"], value["feature_flag.result.reason"]) == ("adyen", "static")
    assert (missing["feature_flag.result.reason"], missing["error.type"]) == ("error", "flag_not_found")
