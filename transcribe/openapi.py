"""The captions part of the OpenAPI document: transcript and notes downloads, caption metrics, meeting records.

The front door (signaling/openapi.py) merges it with the rooms and chat parts; errors use its `Error` schema.
"""

from __future__ import annotations

from typing import Any

from transcribe.formats import FORMATS

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {"400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "default": _ERR}
_ROOM = {"name": "room", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}}
_MEETING = {"name": "meeting", "in": "query", "required": False,
            "description": "admin keys: which meeting of the room (default: the latest); moderator tokens read "
                           "their own meeting's", "schema": {"type": "string"}}
_WHO = "An admin API key (any meeting of the room, `?meeting=`) or a moderator token of this meeting."


_MEETING_ID = {"name": "meeting_id", "in": "path", "required": True, "schema": {"type": "string"}}
_READER = ("An admin API key, this meeting's record token, or a live meeting token of it (moderators; attendees "
           "where --attendees-see-records).")
_EDITOR = "Its organizer: a moderator's record or meeting token, or an admin API key."
_STR = {"type": "string"}
_NULL_STR = {"type": ["string", "null"]}
_NUM = {"type": "number"}
_NULL_NUM = {"type": ["number", "null"]}
_NOTES_STATE = {"type": "object", "required": ["edited", "published_at", "tasks_posted"], "properties": {
    "edited": {"type": "boolean"}, "edited_by": _STR, "published_at": _NULL_NUM, "published_by": _STR,
    "tasks_posted": {"type": "integer"}}}
_SUMMARY = {"type": "object", "required": ["meeting_id", "room", "started_at", "live", "duration_seconds",
                                           "attendees", "page"], "properties": {
    "meeting_id": _STR, "room": _STR, "started_at": _NUM, "ended_at": _NULL_NUM, "guests": {"type": "boolean"},
    "live": {"type": "boolean"}, "duration_seconds": _NUM, "attendees": {"type": "array", "items": _STR},
    "has_transcript": {"type": "boolean"}, "page": _STR}}
_ITEM = {"type": "object", "additionalProperties": False, "required": ["task"], "properties": {
    "task": _STR, "owner": _NULL_STR, "due": {"type": ["string", "null"], "format": "date"}}}
_NOTES_EDIT = {"type": "object", "additionalProperties": False, "properties": {
    "summary": {"type": "array", "items": _STR, "maxItems": 50},
    "decisions": {"type": "array", "items": _STR, "maxItems": 50},
    "action_items": {"type": "array", "items": _ITEM, "maxItems": 50}}}
_NOTES_JSON = {"type": "object", "required": ["meeting_id", "attendees", "summary", "decisions", "action_items"]}


def _ok(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def records_part() -> dict[str, Any]:
    """The meeting page's REST (transcribe/records.py)."""
    text = {"schema": {"type": "string"}}
    conflict = {**_ERRORS, "409": _ERR}
    return {
        "/v1/meetings": {"get": {
            "summary": "My meetings (date, duration, attendees): all for an admin API key, its own for a record "
                       "token", "tags": ["meetings"],
            "parameters": [{"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200}}],
            "responses": {"200": _ok({"type": "object", "required": ["meetings"], "properties": {
                "meetings": {"type": "array", "items": _SUMMARY}}}), **_ERRORS}}},
        "/v1/meetings/{meeting_id}": {"get": {
            "summary": "One meeting: date, duration, attendees, speaking time, whether the caller may edit its "
                       "notes. " + _READER, "tags": ["meetings"], "parameters": [_MEETING_ID],
            "responses": {"200": _ok({"allOf": [_SUMMARY, {"type": "object", "properties": {
                "speaking": {"type": "array", "items": {"type": "object", "properties": {
                    "name": _STR, "seconds": _NUM}}},
                "may_edit": {"type": "boolean"}, "notes_state": _NOTES_STATE, "you": _STR}}]}), **_ERRORS}}},
        "/v1/meetings/{meeting_id}/transcript": {"get": {
            "summary": "The meeting's transcript, live or ended, as a download. " + _READER, "tags": ["meetings"],
            "parameters": [_MEETING_ID, {"name": "format", "in": "query", "required": False,
                                         "schema": {"enum": list(FORMATS)}}],
            "responses": {"200": {"description": "the transcript",
                                  "content": {mime: {"schema": {"type": "object"}} if mime == "application/json"
                                              else text for mime in dict.fromkeys(FORMATS.values())}}, **_ERRORS}}},
        "/v1/meetings/{meeting_id}/notes": {
            "get": {"summary": "The notes as they stand (generated, or as the organizer edited them). " + _READER,
                    "tags": ["meetings"],
                    "parameters": [_MEETING_ID, {"name": "format", "in": "query", "required": False,
                                                 "schema": {"enum": ["json", "md"]}}],
                    "responses": {"200": {"description": "the notes", "content": {
                        "application/json": {"schema": _NOTES_JSON}, "text/markdown": text}}, **_ERRORS}},
            "put": {"summary": "Edits the notes' summary, decisions and action items (owner, due date) before they "
                               "are posted. " + _EDITOR, "tags": ["meetings"], "parameters": [_MEETING_ID],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _NOTES_EDIT}}},
                    "responses": {"200": _ok(_NOTES_JSON, "the notes with the edit"), **conflict}}},
        "/v1/meetings/{meeting_id}/notes/publish": {"post": {
            "summary": "Posts the action items to the meeting's chat as tasks, once (409 notes_published after; "
                       "409 invalid_state while the meeting runs). " + _EDITOR, "tags": ["meetings"],
            "parameters": [_MEETING_ID], "responses": {"200": _ok(_NOTES_STATE), **conflict}}},
        "/v1/rooms/{room}/record-token": {"post": {
            "summary": "A record token (30 days) for the caller's live meeting: it reads that meeting's record "
                       "after it ends, never its signaling or chat. A moderator's meeting token (any "
                       "participant's where --attendees-see-records).", "tags": ["meetings"], "parameters": [_ROOM],
            "responses": {"201": _ok({"type": "object", "required": ["token", "meeting_id", "page"], "properties": {
                "token": _STR, "meeting_id": _STR, "moderator": {"type": "boolean"},
                "expires_at": {"type": "integer"}, "page": _STR}}), **_ERRORS}}},
    }


def openapi_part() -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    return {"paths": {**records_part(),
        "/v1/rooms/{room}/transcript": {"get": {
            "summary": "The meeting's transcript (live while it runs, stored after). " + _WHO, "tags": ["captions"],
            "parameters": [_ROOM, _MEETING, {"name": "format", "in": "query", "required": False,
                                             "schema": {"enum": list(FORMATS)}}],
            "responses": {"200": {"description": "the transcript",
                                  "content": {mime: {"schema": {"type": "object"}} if mime == "application/json"
                                              else text for mime in dict.fromkeys(FORMATS.values())}}, **_ERRORS}}},
        "/v1/rooms/{room}/notes": {"get": {
            "summary": "Meeting notes: attendance, speaking time, summary, decisions, action items. " + _WHO,
            "tags": ["captions"],
            "parameters": [_ROOM, _MEETING,
                           {"name": "format", "in": "query", "required": False, "schema": {"enum": ["md", "json"]}},
                           {"name": "date", "in": "query", "required": False,
                            "description": "the meeting's day (YYYY-MM-DD) for relative due dates",
                            "schema": {"type": "string", "format": "date"}}],
            "responses": {"200": {"description": "the notes", "content": {
                "text/markdown": text, "application/json": {"schema": {"type": "object"}}}}, **_ERRORS}}},
        "/v1/captions/metrics": {"get": {
            "summary": "Caption service load: live rooms, inference queue, degradation (admin API key)",
            "tags": ["captions"],
            "responses": {"200": {"description": "metrics", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"rooms": {"type": "array", "items": {"type": "string"}}},
                "required": ["rooms"]}}}}, **_ERRORS}}},
    }}
