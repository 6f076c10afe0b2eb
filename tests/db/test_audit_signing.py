"""A key held outside the database signs the chain: a superuser who recomputes the chain
cannot sign it again, and the key never reaches the database or any output."""

from __future__ import annotations

import json

from tests.conftest import Cli
from tests.db.test_kill_path import tamper

GO = ("-r", "INC-3", "-y")
KEY = "k3y-" + "0123456789abcdef" * 3
OTHER = "another-key-" + "f" * 40

RECOMPUTE = (
    " UPDATE flagctl.audit SET reason = 'routine' WHERE seq = 1;"
    " UPDATE flagctl.audit a SET hash = flagctl.audit_digest(a) WHERE seq = 1;"
    " DELETE FROM flagctl.audit_seal; INSERT INTO flagctl.audit_unsealed SELECT seq FROM flagctl.audit;"
    " SELECT flagctl.audit_seal(true);"
)


def signed_changes(groups: Cli) -> None:
    for args in (("set", "groups_send", "off"), ("kill", "KS5"), ("release", "KS5")):
        result = groups(*args, *GO, FLAGCTL_AUDIT_KEY=KEY)
        assert result.exit_code == 0, result.stderr


def test_every_change_signs_the_head_and_verify_checks_it(groups: Cli) -> None:
    signed_changes(groups)
    assert groups.sql("SELECT count(*) FROM flagctl.audit_signature") == [(3,)]
    ok = groups("audit", "verify", FLAGCTL_AUDIT_KEY=KEY)
    assert ok.exit_code == 0 and "3 signatures valid" in ok.stdout, ok.stderr
    unkeyed = groups("audit", "verify")
    assert unkeyed.exit_code == 0 and "3 signatures not checked" in unkeyed.stderr
    document = json.loads(groups("audit", "verify", "-o", "json", FLAGCTL_AUDIT_KEY=KEY).stdout)
    assert document["signatures"] == {"checked": 3, "unchecked": 0}


def test_a_recomputed_chain_is_caught_by_the_signatures(groups: Cli) -> None:
    signed_changes(groups)
    tamper(groups, RECOMPUTE)
    result = groups("audit", "verify")  # even without the key: the signed hashes no longer match
    assert result.exit_code == 1 and "differs from what was signed" in result.stderr, result.stderr


def test_a_superuser_who_resigns_without_the_key_is_caught_with_it(groups: Cli) -> None:
    """The superuser recomputes the chain and rewrites the signatures too — with a key of
    their own, since they do not have ours."""
    from flagctl.store.audit import AuditKey

    signed_changes(groups)
    fake = AuditKey(OTHER.encode())
    tamper(groups, RECOMPUTE)
    groups.sql(
        "ALTER TABLE flagctl.audit_signature DISABLE TRIGGER audit_signature_append_only;"
        " DELETE FROM flagctl.audit_signature"
    )
    for pos, digest in groups.sql("SELECT pos, hash FROM flagctl.audit_seal ORDER BY pos"):
        groups.sql(
            "INSERT INTO flagctl.audit_signature (pos, hash, mac, key_id) VALUES (%s, %s, %s, %s)",
            (pos, digest, fake.mac(pos, digest), AuditKey(KEY.encode()).key_id),  # our key's id, their MAC
        )
    groups.sql("ALTER TABLE flagctl.audit_signature ENABLE TRIGGER audit_signature_append_only")
    assert groups("audit", "verify").exit_code == 0  # consistent for anyone without the key
    result = groups("audit", "verify", FLAGCTL_AUDIT_KEY=KEY)
    assert result.exit_code == 1 and "it was forged" in result.stderr, result.stderr


def test_the_key_never_reaches_the_database_or_the_output(groups: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keyfile = tmp_path / "audit.key"
    keyfile.write_text(KEY + "\n")
    outputs = []
    for args in (("kill", "KS5", *GO), ("audit", "checkpoint"), ("audit", "verify"), ("audit", "log")):
        result = groups(*args, FLAGCTL_AUDIT_KEY_FILE=str(keyfile))
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert not any(KEY in text for text in outputs)
    dump = groups.sql(
        "SELECT (SELECT string_agg(a::text, '') FROM flagctl.audit a)"
        " || (SELECT string_agg(g::text, '') FROM flagctl.audit_signature g)"
        " || (SELECT string_agg(e::text, '') FROM flagctl.engaged_switch e)"
    )[0][0]
    assert KEY not in dump
    assert groups.sql("SELECT count(*) FROM flagctl.audit_signature") == [
        (1,)
    ]  # the checkpoint found the head signed


def test_a_short_or_unreadable_key_is_a_usage_error_before_anything_changes(groups: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = groups("kill", "KS5", *GO, FLAGCTL_AUDIT_KEY="hunter2")
    assert short.exit_code == 2 and "too short" in short.stderr and "hunter2" not in short.stderr
    missing = groups("kill", "KS5", *GO, FLAGCTL_AUDIT_KEY_FILE=str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "cannot read the audit key" in missing.stderr
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
