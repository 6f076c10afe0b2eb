"""One to three real examples for every command, shown at the end of its ``--help`` (as
kubectl and gh do). ``tests/unit/test_help.py`` parses every line here against the command
line it documents, so an example cannot name an option that does not exist."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "status": (
        "flagctl status -o json",
        "flagctl status --watch",
        "flagctl status p3_advisory -w -o json --count 1 --timeout 10m",
    ),
    "stage show": ("flagctl stage show p3", "flagctl stage show p3 -o json"),
    "stage set": (
        "flagctl stage set p3 canary -r 'CHG-7: canary' -y",
        "flagctl stage set p3 limited --dry-run",
    ),
    "stage next": ("flagctl stage next p3 -r 'CHG-7: widen after the bake' -y",),
    "stage rollback": ("flagctl stage rollback p3 -r 'deploy 41 failed' -y",),
    "stage history": ("flagctl stage history p3", "flagctl stage history p3 -o json"),
    "set": (
        "flagctl set p3_advisory off -r 'INC-9: off for now' -y",
        "flagctl set F3 on --scope workspace:42 -r 'pilot for ws 42' -y",
    ),
    "eval": (
        "flagctl eval canary_feature --id 1234 --scope publisher:42",
        "flagctl eval canary_feature --subjects-sql 'select id from users' --percent 50",
    ),
    "kill": (
        "flagctl kill p3-off -r 'INC-42: errors' -y",
        "flagctl kill KS1 --scope workspace:42 -r 'INC-7: adapter errors' -y",
        "flagctl kill --list",
    ),
    "release": (
        "flagctl release p3-off -r 'INC-42 mitigated' -y",
        "flagctl release p3-off --dry-run",
    ),
    "watch": ("flagctl watch --once", "flagctl watch --auto -r 'watchdog' -y"),
    "verify gating": ("flagctl verify gating", "flagctl verify gating --flag p3_advisory -o json"),
    "verify kill": ("flagctl verify kill --window 30s",),
    "verify isolation": ("flagctl verify isolation --window 30s",),
    "verify guardrails": ("flagctl verify guardrails", "flagctl verify guardrails -o json"),
    "verify all": ("flagctl verify all", "flagctl verify all -o json"),
    "drill kill": ("flagctl drill kill p3-off -r 'quarterly drill' -y",),
    "drill rollback": ("flagctl drill rollback p3 -r 'quarterly drill' -y",),
    "drill list": ("flagctl drill list", "flagctl drill list -n 5 -o json"),
    "drill show": ("flagctl drill show 12",),
    "profile list": ("flagctl profile list",),
    "profile show": ("flagctl profile show emergency",),
    "profile diff": ("flagctl profile diff emergency",),
    "profile apply": (
        "flagctl profile apply emergency -r 'INC-9' -y",
        "flagctl profile apply normal --mark-safe -r 'the week baseline' -y",
    ),
    "profile snapshot": ("flagctl profile snapshot known-good --mark-safe -r 'before the deploy' -y",),
    "profile validate": ("flagctl profile validate emergency",),
    "profile schema": ("flagctl profile schema",),
    "rollback": ("flagctl rollback --to-last-safe -r 'INC-12: back to the baseline' -y",),
    "restore": ("flagctl restore --as-of 2026-11-21T09:00Z -r 'INC-3: undo the morning' -y",),
    "notify deliver": (
        "flagctl notify deliver",
        "flagctl notify deliver --follow --sink oncall",
        "flagctl notify deliver --once -o json",
    ),
    "notify log": ("flagctl notify log --failed", "flagctl notify log --sink audit-hook -n 20 -o json"),
    "freeze set": ("flagctl freeze set --until 24h -r 'INC-77: no widening until the review' -y",),
    "freeze clear": ("flagctl freeze clear -r 'INC-77 review done' -y",),
    "freeze list": ("flagctl freeze list",),
    "rollout start": ("flagctl rollout start p3 -r 'CHG-311: Phase 3 to 50%' --to broad -y",),
    "rollout status": ("flagctl rollout status", "flagctl rollout status p3 -o json"),
    "rollout pause": ("flagctl rollout pause p3 -r 'holding over the weekend' -y",),
    "rollout resume": ("flagctl rollout resume p3 -r 'weekend over' -y",),
    "rollout abort": ("flagctl rollout abort p3 -r 'INC-51: stop here' -y",),
    "tokens create": ("flagctl tokens create checkout-web -r 'CHG-12: checkout reads flags via serve' -y",),
    "tokens list": ("flagctl tokens list", "flagctl tokens list --all -o json"),
    "tokens revoke": ("flagctl tokens revoke checkout-web -r 'SEC-4: token leaked in a log' -y",),
    "serve": (
        "flagctl serve --port 8080",
        "flagctl serve phase3 orca --host 0.0.0.0 --port 8080",
    ),
    "schedule add stage": (
        "flagctl schedule add stage p3 canary --at 2026-12-02T09:00Z -r 'CHG-311: canary at nine' -y",
    ),
    "schedule add set": ("flagctl schedule add set p3_advisory off --at 2h -r 'end of the trial' -y",),
    "schedule add kill": (
        "flagctl schedule add kill p3-off --at 2026-12-24T18:00Z -r 'off over the holidays' -y",
    ),
    "schedule add release": (
        "flagctl schedule add release p3-off --at 2026-12-27T08:00Z -r 'back after the holidays' -y",
    ),
    "schedule add freeze": (
        "flagctl schedule add freeze --at 2026-12-23T18:00Z --until 4d -r 'holiday freeze' -y",
    ),
    "schedule add profile": ("flagctl schedule add profile emergency --at 30m -r 'INC-9 window' -y",),
    "schedule list": ("flagctl schedule list", "flagctl schedule list --all -o json"),
    "schedule cancel": ("flagctl schedule cancel 4 -r 'the launch moved' -y",),
    "run": ("flagctl run -r 'rollout runner on ops-1' -y", "flagctl run --once -o json -y"),
    "exempt add": ("flagctl exempt add canary_feature publisher:42 --allow -r 'launch partner' -y",),
    "exempt remove": ("flagctl exempt remove canary_feature publisher:42 -r 'partner launched' -y",),
    "exempt list": ("flagctl exempt list",),
    "requests": ("flagctl requests", "flagctl requests -o json"),
    "approve": ("flagctl approve 3 -r 'second pair of eyes' -y",),
    "review pending": ("flagctl review pending",),
    "review ack": ("flagctl review ack 481 --note 'kill was right; root cause in INC-42'",),
    "audit log": (
        "flagctl audit log --flag p3_advisory --limit 5",
        "flagctl audit log --since 1d --format orca",
    ),
    "audit export": ("flagctl audit export --since 30d --file audit.jsonl",),
    "audit verify": (
        "flagctl audit verify",
        "flagctl audit verify --since-checkpoint 41:9f2c4e0b8a7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615243",
    ),
    "audit checkpoint": ("flagctl audit checkpoint",),
    "clients": ("flagctl clients", "flagctl clients -o json"),
    "flags stale": ("flagctl flags stale",),
    "manifest publish": ("flagctl manifest publish -r 'adds the ladder for p4' -y",),
    "manifest show": ("flagctl manifest show", "flagctl manifest show --version 3"),
    "manifest diff": ("flagctl manifest diff",),
    "manifest history": ("flagctl manifest history",),
    "manifest validate": (
        "flagctl manifest validate",
        "flagctl manifest validate other/flagctl.yaml -o json",
    ),
    "manifest schema": ("flagctl manifest schema",),
    "db init": ("flagctl db init", "flagctl --dsn postgresql://admin@db/app db init"),
    "db status": ("flagctl db status",),
    "db grant": ("flagctl db grant security oncall_alice",),
    "db revoke": ("flagctl db revoke security oncall_alice",),
    "local start": ("flagctl local start",),
    "local stop": ("flagctl local stop",),
    "local status": ("flagctl local status",),
    "demo": ("flagctl demo", "flagctl demo recsys"),
}


def epilog(path: str) -> str | None:
    """The examples of one command (``"stage set"``) as its help's last section. Click
    rewraps an epilog's paragraphs unless the paragraph starts with a ``\\b`` line."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "\b\nExamples:\n" + "\n".join(f"  $ {line}" for line in lines)
