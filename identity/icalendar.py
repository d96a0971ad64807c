"""A scheduled meeting as an iCalendar object (RFC 5545): one VCALENDAR with one VEVENT, for calendars to import.

Times are written in UTC (`DTSTART:20261202T090000Z`), which every calendar reads without a VTIMEZONE; the
calendar shows them in its reader's zone. The event's URL and LOCATION are the room's join link, which carries no
token: signed-in members join by name (POST /v1/rooms/{room}/join-as-member). Lines end in CRLF and are folded
at 75 octets without splitting a UTF-8 character (RFC 5545 3.1); text values are escaped (3.3.11).
"""

from __future__ import annotations

from datetime import UTC, datetime

from identity.schedule import ScheduledMeeting

PRODID = "-//Convene//Scheduled meetings//EN"
LINE_OCTETS = 75


def ical_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as `\\n`, other controls dropped."""
    out = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(c for c in out if c >= " " and c != "\x7f")


def fold(line: str) -> str:
    """One content line, folded to lines of at most 75 octets (continuations start with a space)."""
    parts: list[str] = []
    current, size, limit = "", 0, LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, LINE_OCTETS - 1  # the leading space counts
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def event_calendar(plan: ScheduledMeeting, join_url: str, host: str, organizer_name: str) -> str:
    """The plan as a VCALENDAR text (CRLF line ends). `host` makes the UID globally unique."""
    description = f"Join: {join_url}\nOrganiser: {organizer_name}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{plan.id}@{escape_text(host)}",
        f"DTSTAMP:{ical_time(plan.updated_at)}",
        f"CREATED:{ical_time(plan.created_at)}",
        f"LAST-MODIFIED:{ical_time(plan.updated_at)}",
        f"SEQUENCE:{plan.sequence}",
        f"DTSTART:{ical_time(plan.starts_at)}",
        f"DTEND:{ical_time(plan.ends_at)}",
        f"SUMMARY:{escape_text(plan.title)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"LOCATION:{escape_text(join_url)}",
        f"URL:{join_url}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)
