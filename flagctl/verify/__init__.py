"""Verification against the live database: guardrail queries and proofs that can fail."""
