"""What a scheduled meeting's request body may hold, checked field by field (`400 invalid_field` naming the field).

starts_at is RFC 3339 with an explicit offset (`2026-12-02T09:00:00+01:00` or `…Z`): a time without one means
something different in every zone, so it is refused rather than guessed. A meeting starts at most a year ahead
and not in the past (a few minutes of clock skew allowed); it lasts 5 minutes to 24 hours; its title is one line
of up to 200 characters; it invites up to 100 people.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chat.service import valid_login
from common.errors import InvalidField
from common.names import display_name

TITLE_MAX = 200
INVITEES_MAX = 100
DURATION_MIN, DURATION_MAX = 5, 24 * 60
AHEAD_MAX_SECONDS = 366 * 86400
PAST_SLACK_SECONDS = 5 * 60
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$")
FIELDS = {"room", "title", "starts_at", "duration_minutes", "invitees", "timezone"}
CHANGEABLE = FIELDS - {"room"}


@dataclass(frozen=True)
class PlanFields:
    """The fields a request gave (None: not given)."""

    title: str | None = None
    starts_at: float | None = None
    duration_minutes: int | None = None
    invitees: tuple[str, ...] | None = None
    timezone: str | None = None


def parse_rfc3339(value: object, field: str) -> float:
    """RFC 3339 with an offset to Unix seconds (`400 invalid_field` naming `field` otherwise)."""
    if not isinstance(value, str) or not RFC3339.match(value):
        raise InvalidField(f"{field} must be RFC 3339 with an offset, e.g. 2026-12-02T09:00:00+01:00", field=field)
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidField(f"{field} is not a date and time: {exc}", field=field) from exc


def parse_starts_at(value: object, now: float) -> float:
    ts = parse_rfc3339(value, "starts_at")
    if ts < now - PAST_SLACK_SECONDS:
        raise InvalidField("starts_at is in the past", field="starts_at")
    if ts > now + AHEAD_MAX_SECONDS:
        raise InvalidField("starts_at may be at most a year ahead", field="starts_at")
    return ts


def parse_duration(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not DURATION_MIN <= value <= DURATION_MAX:
        raise InvalidField(f"duration_minutes must be an integer {DURATION_MIN}-{DURATION_MAX}",
                           field="duration_minutes")
    return value


def parse_invitees(value: object, organizer: str) -> tuple[str, ...]:
    """Distinct logins in the order given, the organiser left out (they are there anyway)."""
    if not isinstance(value, list):
        raise InvalidField("invitees must be a list of logins", field="invitees")
    logins = list(dict.fromkeys(valid_login(v, "invitees") for v in value))
    if len(logins) > INVITEES_MAX:
        raise InvalidField(f"at most {INVITEES_MAX} invitees", field="invitees")
    return tuple(login for login in logins if login != organizer)


def parse_timezone(value: object) -> str:
    """An IANA zone name (`Europe/Berlin`), or "" for none."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 64 or not ZONE_NAME.match(value):
        raise InvalidField("timezone must be an IANA zone name such as Europe/Berlin", field="timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidField(f"unknown timezone {value!r}", field="timezone") from exc
    return value


def parse_fields(body: dict[str, Any], organizer: str, now: float | None = None) -> PlanFields:
    now = time.time() if now is None else now
    return PlanFields(
        title=display_name(body["title"], "title", max_len=TITLE_MAX) if "title" in body else None,
        starts_at=parse_starts_at(body["starts_at"], now) if "starts_at" in body else None,
        duration_minutes=parse_duration(body["duration_minutes"]) if "duration_minutes" in body else None,
        invitees=parse_invitees(body["invitees"], organizer) if "invitees" in body else None,
        timezone=parse_timezone(body["timezone"]) if "timezone" in body else None)


def require_fields(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in body:
            raise InvalidField(f"{name} is required", field=name)
