"""``flagctl serve``: flagctl for every service, in any language, at fleet scale.

One process holds one PostgreSQL connection per system (a ``Relay``: the gate's LISTEN
connection and snapshot) and answers over HTTP:

- **OFREP** (``/ofrep/v1/evaluate/flags[/{key}]``), so any OpenFeature SDK reads flagctl
  through its stock OFREP provider, with the gate's semantics (kills over overrides,
  exemptions, the internal audience, staleness) — ``flagctl.gate.resolve``, the very
  resolution the Python provider uses;
- **push** (``/flagctl/v1/events``, server-sent events): each change's sequence and the
  state's version, so clients re-fetch at once instead of polling;
- **acknowledgements**: a named client's fetch at or past a change's sequence is its ack,
  written to ``flagctl.clients`` under the relay's row, so ``kill --wait-ack`` waits for
  the clients behind a relay and names a stalled one;
- **the status page** (``/``), metrics (``/metrics``), ``/healthz`` and ``/readyz``.

Requests need a bearer token (``flagctl tokens create``); only its hash is stored.
Needs the optional extra: ``pip install 'flagctl[serve]'``. See docs/serve.md.
"""
