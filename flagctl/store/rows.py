"""What the store's row records share."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def row_json(record: object) -> dict[str, Any]:
    """A row record's fields as JSON values: times in ISO 8601, the rest as they are."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in vars(record).items()
    }
