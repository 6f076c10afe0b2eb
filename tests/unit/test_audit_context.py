"""The one constructor of an audit context: every caller of the library meets its rules."""

from __future__ import annotations

import pytest

from flagctl.errors import UsageError
from flagctl.store.db import AuditContext


@pytest.mark.parametrize(("field", "value"), [("reason", "ok\x1b]0;pwned\x07"), ("actor", "alice\nbob")])
def test_a_context_built_directly_refuses_a_control_character(field: str, value: str) -> None:
    given = {"actor": "alice", "reason": "INC-1", "action": "kill", "command": "flagctl kill x"}
    with pytest.raises(UsageError, match=f"--{field} has a control character"):
        AuditContext(**{**given, field: value})


def test_given_strips_requires_and_bounds_the_reason_and_defaults_the_actor() -> None:
    context = AuditContext.given("kill", reason="  INC-1 ", actor=None, command="flagctl kill x")
    assert context.reason == "INC-1" and context.actor and context.request_id
    with pytest.raises(UsageError, match="kill needs --reason"):
        AuditContext.given("kill", reason="   ", actor="a", command="c")
    assert AuditContext.given("kill", reason=None, actor="a", command="c", required=False).reason == ""
    with pytest.raises(UsageError, match="at most 2000"):
        AuditContext.given("kill", reason="x" * 2001, actor="a", command="c")
    with pytest.raises(UsageError, match="at most 200"):
        AuditContext.given("kill", reason="x", actor="a" * 201, command="c")
    assert AuditContext.given("kill", reason="x", actor="a", command="c", request_id="r1").request_id == "r1"
