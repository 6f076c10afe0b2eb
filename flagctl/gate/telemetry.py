"""OpenTelemetry for the gate and the OpenFeature provider: one ``feature_flag.evaluation``
event per evaluation, with the feature-flag semantic conventions' attributes, emitted
through an OpenTelemetry logger (the conventions record evaluations as events on the Logs
API).

    from flagctl.gate.telemetry import EvaluationEvents

    gate.add_hook(EvaluationEvents())                       # the global logger provider
    FlagctlProvider(gate=gate, telemetry=EvaluationEvents(provider))  # or through OpenFeature

Attributes: ``feature_flag.key``, ``feature_flag.provider.name`` (``flagctl``),
``feature_flag.set.id`` (the system), ``feature_flag.version`` (the audit sequence of the
state decided from), ``feature_flag.context.id`` (the subject), ``feature_flag.result.variant``
(``on``/``off`` for a rollout or bool, else the value), ``feature_flag.result.value`` (a
rollout's or bool's decision; a configuration value is left out: it may be large or
private, and the variant names it), ``feature_flag.result.reason`` (``static``, ``split``,
``targeting_match``, ``disabled``, ``stale``, ``error``), and on an error ``error.type``
and ``feature_flag.error.message``.

Off by default and free when off: a gate without a hook decides through its plain methods.
Needs the optional extra: ``pip install 'flagctl[otel]'``. (Python's OpenTelemetry publishes
its Logs API as ``opentelemetry._logs`` so far: the one library module flagctl imports by
an underscored name.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.gate.client import Evaluation

if TYPE_CHECKING:
    from opentelemetry._logs import LoggerProvider

EVENT = "feature_flag.evaluation"
PROVIDER = "flagctl"


class EvaluationEvents:
    """A gate hook (``Gate.add_hook``) that emits each evaluation as an OpenTelemetry
    ``feature_flag.evaluation`` event; ``logger_provider`` defaults to the global one."""

    def __init__(self, logger_provider: LoggerProvider | None = None) -> None:
        from opentelemetry._logs import LogRecord, get_logger

        self._logger = get_logger("flagctl.gate", logger_provider=logger_provider)
        self._record = LogRecord

    def __call__(self, evaluation: Evaluation) -> None:
        self._logger.emit(self._record(event_name=EVENT, attributes=attributes(evaluation)))


def attributes(evaluation: Evaluation) -> dict[str, Any]:
    """The event's attributes (semantic conventions for feature flags)."""
    found: dict[str, Any] = {
        "feature_flag.key": evaluation.flag,
        "feature_flag.provider.name": PROVIDER,
        "feature_flag.set.id": evaluation.system,
        "feature_flag.result.reason": evaluation.reason,
    }
    if evaluation.seq is not None:
        found["feature_flag.version"] = str(evaluation.seq)
    if evaluation.subject is not None:
        found["feature_flag.context.id"] = evaluation.subject
    if evaluation.variant is not None:
        found["feature_flag.result.variant"] = evaluation.variant
    if isinstance(evaluation.value, bool):
        found["feature_flag.result.value"] = evaluation.value
    if evaluation.error_type is not None:
        found["error.type"] = evaluation.error_type
        found["feature_flag.error.message"] = evaluation.error_message or ""
    return found
