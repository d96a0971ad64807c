"""The OpenAPI part of scheduled posts (merged into the document at GET /v1/openapi.json)."""

from __future__ import annotations

from typing import Any

_S = "#/components/schemas/"
_STR = {"type": "string"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}
_ERR = {"description": "error ({error: {code, message}}, stable codes)",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": _STR}

SCHEMAS: dict[str, Any] = {
    "ScheduledPost": {"type": "object", "required": [
        "id", "author", "channel", "at", "recurrence", "status", "next_run", "created_at", "runs", "last_run"],
        "properties": {
            "id": _STR, "author": _STR, "channel": _STR, "at": _NUM_OR_NULL,
            "text": {"type": "string", "description": "absent on another user's post in a channel the caller "
                                                      "(an admin) is not a member of"},
            "recurrence": {"type": ["object", "null"], "properties": {
                "kind": {"enum": ["rrule", "cron"]}, "rule": _STR, "timezone": _STR}},
            "status": {"enum": ["scheduled", "done", "cancelled"]}, "next_run": _NUM_OR_NULL,
            "created_at": {"type": "number"}, "runs": {"type": "integer"},
            "last_run": {"oneOf": [{"type": "null"}, {"$ref": _S + "ScheduledPostRun"}]},
            "history": {"type": "array", "items": {"$ref": _S + "ScheduledPostRun"}}}},
    "ScheduledPostRun": {"type": "object", "required": ["outcome", "error_code", "message_id"], "properties": {
        "at": {"type": "number"}, "due_at": {"type": "number"}, "ran_at": {"type": "number"},
        "outcome": {"enum": ["sent", "failed"]}, "error_code": _STR_OR_NULL, "message_id": _STR_OR_NULL}},
}


def _op(summary: str, ok: dict[str, Any], status: str = "200", **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": ["scheduled posts"],
            "responses": {status: ok, **{c: _ERR for c in ("400", "401", "403", "404", "409", "429")},
                          "default": _ERR}, **extra}


def _post_json(description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _S + "ScheduledPost"}}}}


_CREATE_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["channel", "text"], "additionalProperties": False, "properties": {
        "channel": {"type": "string", "description": "channel id or name; the author must be a member"},
        "text": {"type": "string", "minLength": 1},
        "at": {"type": "string", "description": "ISO 8601 with an offset; required (and in the future) for a "
                                                "one-time post; a recurring post's start (RRULE DTSTART)"},
        "rrule": {"type": "string", "description": "one RFC 5545 RRULE line, HOURLY or coarser, e.g. "
                                                   "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=18"},
        "cron": {"type": "string", "description": "5 fields, e.g. 0 18 * * 1-5"},
        "timezone": {"type": "string", "description": "IANA zone the rule is read in (default UTC)"}}}}}}


def openapi_part() -> dict[str, Any]:
    return {"paths": {
        "/v1/scheduled_posts": {
            "post": _op("Schedule a post: once (at) or recurring (rrule or cron, in a timezone). The author's "
                        "membership and permission to post are checked now and again at send time",
                        _post_json("scheduled"), "201", requestBody=_CREATE_BODY),
            "get": _op("Scheduled posts: the caller's own (admins: everyone's), with next_run and the last run's "
                       "outcome (sent, or failed with error_code such as not_a_member or user_deactivated)",
                       {"description": "ok", "content": {"application/json": {"schema": {
                           "type": "object", "required": ["scheduled_posts"], "properties": {
                               "scheduled_posts": {"type": "array", "items": {"$ref": _S + "ScheduledPost"}}}}}}}),
        },
        "/v1/scheduled_posts/{id}": {
            "get": _op("One scheduled post with the history of its runs (the author's or, for admins, any)",
                       _post_json(), parameters=[_ID]),
            "delete": _op("Cancel a scheduled post (409 invalid_state when it is done or cancelled already)",
                          _post_json("cancelled"), parameters=[_ID]),
        },
    }, "components": {"schemas": SCHEMAS}}
