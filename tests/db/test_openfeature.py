"""The OpenFeature provider, through the real OpenFeature SDK: typed resolution, the
targeting key as subject, attributes as scopes, reason and variant from the deciding rule,
and PROVIDER_CONFIGURATION_CHANGED on every change."""

from __future__ import annotations

import threading

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.flag_evaluation import Reason

from flagctl.gate.openfeature import FlagctlProvider
from tests.conftest import GROUPS_MANIFEST, RECSYS_MANIFEST, Cli

GO = ("-r", "INC-2", "-y")


def test_boolean_flags_through_the_sdk(groups: Cli) -> None:
    groups("stage", "set", "groups", "stage0-dogfood", *GO)
    groups("set", "F3", "true", "--scope", "workspace:42", *GO)
    provider = FlagctlProvider(groups.dsn, manifest=GROUPS_MANIFEST)
    api.set_provider_and_wait(provider)  # initialize waits for the first snapshot
    try:
        client = api.get_client()
        in_42 = EvaluationContext("user-1", {"workspace": "42"})
        details = client.get_boolean_details("F3", False, in_42)
        assert (details.value, details.variant, details.reason) == (True, "on", Reason.STATIC)
        assert client.get_boolean_value("F3", True, EvaluationContext("user-1")) is False  # global: off
        plain_off = client.get_boolean_details("F3", True, EvaluationContext("user-1"))
        assert (plain_off.reason, plain_off.flag_metadata["rule"]) == (Reason.DISABLED, "off")  # no stage
        public = client.get_boolean_details("F1", False, EvaluationContext("user-1"))
        assert (public.value, public.reason, public.variant) == (
            False,
            Reason.SPLIT,
            "off",
        )  # 0% for the public
        staff = client.get_boolean_details("F1", False, EvaluationContext("user-1", {"internal": True}))
        assert (staff.value, staff.reason) == (True, Reason.TARGETING_MATCH)  # dogfood: the internal audience

        changed = threading.Event()
        api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, lambda _: changed.set())
        assert groups("kill", "KS1", *GO).exit_code == 0
        assert changed.wait(10)  # the SDK heard of the change
        killed = client.get_boolean_details("F3", True, in_42)
        assert (killed.value, killed.reason) == (False, Reason.DISABLED)
        assert "KS1" in killed.flag_metadata["rule"]
        missing = client.get_boolean_details("nope", True, in_42)
        assert missing.value is True and missing.error_code is not None  # unknown: the caller's default
    finally:
        api.clear_providers()
        api.clear_hooks()
        provider.shutdown()


def test_typed_values_through_the_sdk(recsys: Cli) -> None:
    recsys("set", "exposure_percent", "40", "--scope", "region:eu", *GO)
    provider = FlagctlProvider(recsys.dsn, manifest=RECSYS_MANIFEST)
    api.set_provider_and_wait(provider)
    try:
        client = api.get_client()
        eu = EvaluationContext("user-9", {"region": "eu"})
        assert client.get_integer_value("exposure_percent", 0, eu) == 40
        assert client.get_integer_value("exposure_percent", 0, EvaluationContext("user-9")) == 100
        assert client.get_float_value("alpha_override", 0.0, eu) == 0.5
        assert client.get_string_value("policy_mode", "x", eu) == "hybrid_default"
        assert client.get_object_value("region_scope", {"x": 1}, eu) == []
        wrong = client.get_string_details("exposure_percent", "fallback", eu)
        assert wrong.value == "fallback" and wrong.error_code is not None  # a type mismatch
    finally:
        api.clear_providers()
        provider.shutdown()
