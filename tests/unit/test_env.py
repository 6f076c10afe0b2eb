"""The injected Environment decides what the terminal gets, not the process running it."""

from __future__ import annotations

from flagctl.cli.env import Environment


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert Environment(environ={}, stderr_isatty=True).color()
    assert not Environment(environ={"NO_COLOR": "1"}, stderr_isatty=True).color()
    assert not Environment(environ={}, stderr_isatty=False).color()


def test_interactive_only_with_a_terminal_on_stdin() -> None:
    assert Environment(stdin_isatty=True).is_interactive()
    assert not Environment(stdin_isatty=False).is_interactive()
