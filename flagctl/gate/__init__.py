"""The gate: flag decisions inside an application process, from an in-memory snapshot that
PostgreSQL keeps current.

    from flagctl.gate import Gate

    gate = Gate("host=db dbname=flags user=app", system="phase3")  # the published catalogue
    if gate.enabled("p3_advisory", user.id, scopes=[f"workspace:{ws}"]):
        ...

- **One implementation.** Decisions are ``flagctl eval``'s (``views.evaluate.decide_from``):
  kills, priority flags, exemptions, internal audience, bucketing — byte for byte.
- **No polling to see a kill.** A background thread LISTENs on the ``flagctl`` channel; the
  audit trigger NOTIFYs in the transaction that changed a flag, so the notification arrives
  when (and only if) the change commits, and the gate reads what changed: the audit rows
  it has not applied name the flags, exemptions and switches to read again (a full read on
  a reconnect, a resync or a digest mismatch). ``Gate.reload`` reads, ``Gate.apply`` makes
  a state current — whatever source read it.
- **A missed notification is detected, and so is a change around the audit trail.** The
  snapshot carries its change sequence (the newest audit seq of the system) and a digest of
  the rows it was built from, both read with it; every ``check`` interval the gate reads
  both again in one statement (``flagctl.store.gate``) and reloads if either moved. A reconnect
  always reloads. A full ``resync`` runs as a fallback too.
- **Fast.** When a snapshot is built, each flag's decision is compiled
  (``flagctl.gate.compiled``): ``enabled`` is a dict lookup and at most one hash, and
  ``decide_from`` decides only a subject in a scope where the flag has an override, a
  kill or an exemption — the same answers (a property test holds them equal).
- **Stale: fail closed, but keep configuration.** When the last successful read is older
  than ``staleness`` (the database is gone), a rollout or bool flag is off (``enabled``
  False, ``decide`` None, ``value`` its off value) until the gate is current again; a
  configuration value (int, float, enum, string, list) keeps the last value the gate read,
  since its default is not safer than what was set (a ``payment_provider`` must not fall
  back from ``adyen`` to ``stripe`` for the length of a database blip). A flag's
  ``when_stale: off | last`` in the manifest overrides its type's default. Before the first
  read every flag is off (its default).
- **Thread-safe, asyncio-friendly.** The snapshot is replaced whole, never mutated; a
  decision reads one reference and does no I/O, so it never blocks an event loop.

- **Or through ``flagctl serve``.** ``RemoteGate(url, token, system=…)`` is the same gate
  reading a relay instead of PostgreSQL (``flagctl.gate.remote``): a fleet costs the
  database one connection per relay, not one per process.

The gate needs only ``SELECT`` on flagctl's tables (the ``flagctl_viewer`` role) and on
the bound tables. It imports neither typer nor rich.
"""

from flagctl.gate.client import CHANNEL, Gate, State, Stats
from flagctl.gate.remote import RemoteGate  # httpx (the relay extra) only once one runs

__all__ = ["CHANNEL", "Gate", "RemoteGate", "State", "Stats"]
