"""Times as people and clients write them: ISO 8601 or Unix seconds, to Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime

from common.errors import InvalidField


def parse_time(value: object, field: str) -> float | None:
    """ISO 8601 (with or without offset, `Z` too; naive means UTC) or Unix seconds; None is None. Anything else
    is `400 invalid_field` naming `field`."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise InvalidField(f"{field} must be ISO 8601 (2026-12-01T09:00:00Z) or Unix seconds", field=field)
