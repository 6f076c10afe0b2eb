"""The audit trail in the formats other tools read.

The store reads audit rows (``store.audit``); this module only reshapes them. Today that is
ORCA's flag-change audit format (``flagctl audit log --format orca``): one JSON object per
changed flag, with ORCA's field names.
"""

from __future__ import annotations

from typing import Any

from flagctl.model.manifest import Manifest
from flagctl.model.values import Rollout
from flagctl.store.audit import AuditRow, value_from_row

# Rows that change no flag's value, though they name a flag: engagements, exemptions, safe
# points and freezes have their own records.
NOT_A_FLAG_VALUE = ("kill_switch:", "exemption:", "safe_point:", "flagctl.freeze")


def orca_record(manifest: Manifest, row: AuditRow) -> dict[str, Any] | None:
    """A row in the ORCA flag-change audit format (None: the row changed no flag)::

        {"timestamp", "flag_name", "previous_value", "new_value", "changed_by",
         "rollout_percentage", "reason"}

    For a rollout the values are its enabled state and ``rollout_percentage`` its percent
    after the change; for other types the values themselves and no percentage."""
    if row.flag is None or row.flag not in manifest.flags or row.action.endswith(".refused"):
        return None
    if row.target.startswith(NOT_A_FLAG_VALUE):
        return None
    before = value_from_row(manifest, row, "before")
    after = value_from_row(manifest, row, "after")
    percent = after.percent if isinstance(after, Rollout) else None
    return {
        "timestamp": row.at.isoformat().replace("+00:00", "Z"),
        "flag_name": row.flag if row.scope in (None, "global") else f"{row.flag}@{row.scope}",
        "previous_value": before.enabled
        if isinstance(before, Rollout)
        else _plain(manifest, row.flag, before),
        "new_value": after.enabled if isinstance(after, Rollout) else _plain(manifest, row.flag, after),
        "changed_by": row.actor or row.db_user,
        "rollout_percentage": percent,
        "reason": row.reason,
    }


def _plain(manifest: Manifest, flag: str, value: Any) -> Any:
    return None if value is None else manifest.flags[flag].to_db(value)
