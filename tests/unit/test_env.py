"""The injected Environment decides what the terminal gets, not the process running it."""

from __future__ import annotations

from flagctl.cli.env import Capabilities, Environment


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert Environment(Capabilities(environ={}, stderr_isatty=True)).color()
    assert not Environment(Capabilities(environ={"NO_COLOR": "1"}, stderr_isatty=True)).color()
    assert not Environment(Capabilities(environ={}, stderr_isatty=False)).color()


def test_interactive_only_with_a_terminal_on_stdin() -> None:
    assert Environment(Capabilities(stdin_isatty=True)).is_interactive()
    assert not Environment(Capabilities(stdin_isatty=False)).is_interactive()


def test_render_writes_through_the_environments_console_not_the_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    from flagctl.cli import render

    monkeypatch.setenv("NO_COLOR", "1")  # the process says no colour; the Environment is what counts
    out, err = io.StringIO(), io.StringIO()
    env = Environment(Capabilities(environ={}, stdout=out, stderr=err, stderr_isatty=True))
    env.activate()
    try:
        render.out("data")
        render.error("it failed", "do this")
    finally:
        env.close()
    assert out.getvalue() == "data\n"
    assert err.getvalue().startswith("\x1b[31m\x1b[1mflagctl: error:\x1b[0m it failed\n  do this")
    render.out("after")  # closed: no longer this Environment's streams
    assert out.getvalue() == "data\n"


def test_no_color_in_the_environments_environ_turns_colour_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    from flagctl.cli import render

    monkeypatch.delenv("NO_COLOR", raising=False)
    err = io.StringIO()
    env = Environment(Capabilities(environ={"NO_COLOR": "1"}, stderr=err, stderr_isatty=True))
    env.activate()
    try:
        render.error("it failed")
    finally:
        env.close()
    assert err.getvalue() == "flagctl: error: it failed\n"


def test_capabilities_and_global_options_are_apart() -> None:
    from dataclasses import fields

    from flagctl.cli.env import GlobalOptions

    given = {f.name for f in fields(Capabilities)}
    parsed = {f.name for f in fields(GlobalOptions)}
    assert not given & parsed
    assert {"environ", "clock", "sleep", "stdout", "stderr"} <= given
    assert {"target", "dsn", "output", "lock_timeout", "request_id"} <= parsed
