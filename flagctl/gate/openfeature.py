"""An OpenFeature provider backed by the gate: an application that already uses the
OpenFeature SDK switches to flagctl in one line.

    from openfeature import api
    from flagctl.gate.openfeature import FlagctlProvider

    api.set_provider(FlagctlProvider(dsn, manifest="deploy/flagctl.yaml"))
    client = api.get_client()
    client.get_boolean_value("p3_advisory", False, EvaluationContext("user-1", {"workspace": "42"}))

- a flag resolves as ``flagctl serve``'s OFREP endpoints resolve it (``flagctl.gate.resolve``):
  the targeting key is the subject id, attributes named like a scope kind are scopes,
  ``reason`` and ``variant`` come from the rule that decided;
- asked for a type the flag is not (a bool flag as a string), TYPE_MISMATCH;
- a stale gate (database gone beyond the staleness bound) answers as the gate does, with
  reason STALE: a rollout or bool fails closed (its off value — never the caller's default,
  which could be "on"), a config value keeps its last known value (``when_stale`` in the
  manifest overrides either);
- every change the gate applies emits PROVIDER_CONFIGURATION_CHANGED;
- ``telemetry=EvaluationEvents(...)`` (``flagctl.gate.telemetry``, extra ``flagctl[otel]``)
  adds a provider hook that emits every evaluation as an OpenTelemetry
  ``feature_flag.evaluation`` event, errors and the caller's defaults included.

Needs the optional extra: ``pip install 'flagctl[openfeature]'``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, Reason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider, Metadata

from flagctl.gate import Gate
from flagctl.gate.client import Evaluation
from flagctl.gate.resolve import resolve
from flagctl.model.manifest import Manifest

T = TypeVar("T")


class FlagctlProvider(AbstractProvider):
    """OpenFeature resolution from a flagctl gate (see the module)."""

    def __init__(self, dsn: str | None = None, *, manifest: str | Path | Manifest | None = None,
                 gate: Gate | None = None, telemetry: Callable[[Evaluation], None] | None = None,
                 **options: Any) -> None:  # fmt: skip
        if gate is None:
            if dsn is None or manifest is None:
                raise ValueError("give a gate, or a dsn and a manifest")
            gate = Gate(dsn, manifest=manifest, **options)
        self.gate = gate
        self.gate.on_change(self._changed)
        self._hooks: list[Hook] = [] if telemetry is None else [_Observed(gate, telemetry)]

    def get_provider_hooks(self) -> list[Hook]:
        return self._hooks

    def get_metadata(self) -> Metadata:
        return Metadata(name="flagctl")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self.gate.wait_ready()

    def shutdown(self) -> None:
        self.gate.close()

    def _changed(self, seq: int) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(message=f"flagctl change {seq}"))

    # ------------------------------------------------------------------ resolution

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def resolve_object_details(
        self, flag_key: str, default_value: Any, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, evaluation_context, (list, dict))

    def _resolve(
        self, flag_key: str, default_value: T, context: EvaluationContext | None, kinds: tuple[type, ...]
    ) -> FlagResolutionDetails[T]:
        context = context or EvaluationContext()
        found = resolve(self.gate, flag_key, context.targeting_key, context.attributes)
        spec = self.gate.manifest.flags.get(flag_key)
        wants_bool = kinds == (bool,)
        if found.error is None and (found.boolean != wants_bool or not isinstance(found.value, kinds)):
            kind = spec.type if spec is not None else "unknown"
            return _error(default_value, ErrorCode.TYPE_MISMATCH, f"{flag_key} is {kind}")
        if found.error is not None:
            return _error(default_value, ErrorCode(found.error), found.message or found.error)
        value: Any = float(found.value) if kinds == (float, int) else found.value
        return FlagResolutionDetails(
            value, reason=found.reason, variant=found.variant, flag_metadata=found.metadata
        )


def _error(default: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(default, error_code=code, error_message=message, reason=Reason.ERROR)


class _Observed(Hook):
    """Every evaluation through the OpenFeature client, as the provider answered it (or the
    caller's default, on an error), to a gate hook such as ``EvaluationEvents``."""

    def __init__(self, gate: Gate, hook: Callable[[Evaluation], None]) -> None:
        self.gate = gate
        self.hook = hook

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        context = hook_context.evaluation_context
        code = details.error_code
        self.hook(Evaluation(
            hook_context.flag_key, self.gate.system, context.targeting_key if context else None, details.value,
            details.variant, str(details.reason or Reason.UNKNOWN).lower(), self.gate.seq,
            str(code).lower() if code is not None else None, details.error_message,
        ))  # fmt: skip
