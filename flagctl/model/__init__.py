"""The model: what a manifest says — flags and their types, values, durations, ladders,
kill switches, guardrails, constraints. Pure: no database, no terminal."""
