"""Domain exceptions and the exit codes of CONTRACT.md §3 (the README's "Exit codes").

Every failure a user can cause or meet is one of these, all under ``FlagctlError``, each
class carrying its exit code. A database error becomes one in ``store.db.translate``; the
CLI turns any of them into its message and exit code in exactly one place
(``flagctl.cli.flow.failure_code``). Each carries a message (what failed) and an optional
hint (what to do); a ``ConflictError`` also the ``Blocker``s that held the lock it waited for.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a check, guardrail or proof failed, policy refused the action, or the prompt was declined
    USAGE = 2  # bad argument, unknown flag/stage/switch, invalid manifest or profile
    UNREACHABLE = 3  # cannot reach or authenticate to the database
    CONFLICT = 4  # a concurrent change won, or a lock could not be taken in time
    PERMISSION = 5  # permission denied by the database


class FlagctlError(Exception):
    """Base class: a failure reported to the user as one or two plain lines."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(FlagctlError):
    """The command line, manifest, config or input value is wrong."""

    exit_code = ExitCode.USAGE


class InvalidFile(UsageError):
    """A file flagctl reads (manifest, profile, config) cannot be read or does not validate;
    ``problems`` lists every one found, the first in the message."""

    kind = "file"

    def __init__(self, path: str, problems: list[str], hint: str | None = None) -> None:
        first = f"invalid {self.kind} {path}: {problems[0]}" if problems else f"invalid {self.kind} {path}"
        super().__init__(first, hint)
        self.path = path
        self.problems = problems


class ManifestError(InvalidFile):
    """The manifest (``flagctl.yaml``) cannot be read or does not validate."""

    kind = "manifest"


class ProfileError(InvalidFile):
    """A profile file cannot be read or does not validate against the manifest."""

    kind = "profile"


class ConfigError(InvalidFile):
    """The config file (targets) cannot be read or does not validate."""

    kind = "config file"


class PolicyRefused(FlagctlError):
    """A rule refused the action (bake time, skipped stage, guardrail, engaged kill switch,
    freeze, four eyes, a write the table did not take); ``system``, ``target`` and
    ``detail`` are what the audit trail records of the refusal."""

    exit_code = ExitCode.FAILED

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        system: str | None = None,
        target: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.system = system
        self.target = target
        self.detail = detail or {}


class NeedsApproval(PolicyRefused):
    """The manifest's ``approvals:`` want a second person for this change: it was not
    applied; it waits as a request (``request_id`` once recorded) for another user."""

    def __init__(self, message: str, *, system: str, target: str, why: str) -> None:
        super().__init__(message, None, system=system, target=target)
        self.why = why
        self.request_id: int | None = None


class WriteNotTaken(PolicyRefused):
    """A row flagctl wrote did not take the value it was given (a trigger or rule of the
    table's own kept, changed or skipped it): the whole change is rolled back, and the
    refusal names what was in the way (``name``, once the transaction is over)."""

    def __init__(self, table: str, missed: list[str], *, system: str | None = None) -> None:
        self.table = table
        self.missed = missed
        self.culprits: list[str] = []
        super().__init__(self._text(), self._hint(), system=system)

    def name(self, culprits: list[str]) -> None:
        """Say which triggers and rules of the table were in the way."""
        self.culprits = culprits
        self.message = self._text()
        self.args = (self.message,)

    def _text(self) -> str:
        more = f" (+{len(self.missed) - 1} more)" if len(self.missed) > 1 else ""
        what = self.missed[0] if self.missed else "a row did not take its value"
        culprit = "; in the way: " + ", ".join(self.culprits) if self.culprits else ""
        return f"the change did not take in {self.table}: {what}{more}{culprit}; nothing was changed"

    @staticmethod
    def _hint() -> str:
        return (
            "a trigger or rule of the table's own kept, changed or skipped flagctl's write: let "
            "flagctl's writes through (or drop it), then re-run; flagctl db status lists them"
        )


class CheckFailed(FlagctlError):
    """A verification (audit chain, guardrail, proof, drift) ran and failed; the command's
    own report (its JSON document) already says how, so no error document follows it."""

    exit_code = ExitCode.FAILED


class NotConfirmed(FlagctlError):
    """The operator answered no at the prompt; nothing was changed."""

    exit_code = ExitCode.FAILED


class ConnectionFailed(FlagctlError):
    """The target database cannot be reached or refused authentication."""

    exit_code = ExitCode.UNREACHABLE


@dataclass(frozen=True)
class Blocker:
    """A session holding a lock flagctl waited for, as ``pg_stat_activity`` showed it then
    ("?" where it showed nothing)."""

    pid: int
    user: str
    application: str
    state: str
    query: str  # the first 120 characters, whitespace collapsed
    xact_seconds: int  # how long its transaction had been open (0: not known)


class ConflictError(FlagctlError):
    """A concurrent change won, or a lock was not obtained within lock_timeout."""

    exit_code = ExitCode.CONFLICT

    def __init__(self, message: str, hint: str | None = None, blockers: list[Blocker] | None = None) -> None:
        super().__init__(message, hint)
        self.blockers = blockers or []  # who held the lock, first the one named in the message


class PermissionDenied(FlagctlError):
    """The database refused the action for lack of privilege."""

    exit_code = ExitCode.PERMISSION


class DatabaseError(FlagctlError):
    """The database rejected a statement for a reason not covered above."""

    exit_code = ExitCode.FAILED
