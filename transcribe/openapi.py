"""The captions part of the OpenAPI document: transcript and notes downloads, caption metrics.

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


def openapi_part() -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    return {"paths": {
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
