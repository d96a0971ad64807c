"""The whole REST surface as one OpenAPI 3.1 document, served at `GET /v1/openapi.json`.

The front door composes it: its own part (rooms, tokens, guest joins, placement, the signaling socket, server
metrics) here, the captions part from transcribe/openapi.py and, when the server runs chat, chat/openapi.py's
document. tests/test_openapi.py checks that every route has an operation and every operation a route, and fuzzes
the document against a running server (schemathesis).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from chat.openapi import openapi_document as chat_document
from chat.web import CHAT
from integrations.hooks_openapi import openapi_part as hooks_part
from integrations.scheduled_openapi import openapi_part as scheduled_posts_part
from integrations.interaction_openapi import openapi_part as interactions_part
from signaling.audit_api import openapi_part as audit_part
from signaling.stats_api import openapi_part as stats_part
from signaling.scheduled_api import openapi_part as scheduled_meetings_part
from signaling.health import HEALTHZ, READYZ
from signaling.rest import KEY_ID, ROOM_NAME
from transcribe.openapi import openapi_part as captions_part
from transcribe.settings import ROOM_LANGUAGES

PATH = "/v1/openapi.json"
_S = "#/components/schemas/"
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_ERR = {"description": "error ({error: {code, message}}, stable codes)",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}}}
_ROOM = {"name": "room", "in": "path", "required": True, "schema": {"type": "string", "pattern": ROOM_NAME.pattern}}


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON request body; the handlers refuse fields they do not know (bad_request), hence no extra ones."""
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], status: str = "200", body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, public: bool = False, errors: tuple[str, ...] = ()) -> dict[str, Any]:
    codes = ("400", "401", "403", "404", "413", "429", *errors)
    # A 201 (made) answers 200 with the same body when the thing was there already (rooms, invites).
    oks = {status: ok, "200": ok} if status == "201" else {status: ok}
    op: dict[str, Any] = {"summary": summary, "tags": ["rooms"],
                          "responses": {**oks, **{c: _ERR for c in codes}, "default": _ERR}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    if public:
        op["security"] = []
    return op


_NULLABLE_STR = {"type": ["string", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": _STR, "message": _STR, "details": {"type": "object"}}}}},
    "Track": {"type": "object", "required": ["id", "kind", "source", "muted"], "properties": {
        "id": _STR, "kind": {"enum": ["audio", "video"]}, "source": _STR, "muted": _BOOL, "codec": _NULLABLE_STR,
        "layers": {"type": "array", "items": _STR}}},
    "Participant": {"type": "object", "required": ["id", "identity", "name"], "properties": {
        "id": _STR, "identity": _STR, "name": _STR, "tracks": {"type": "array", "items": {"$ref": _S + "Track"}}}},
    "RoomBrief": {"type": "object", "required": ["name", "captions", "max_participants", "num_participants"],
                  "properties": {"name": _STR, "meeting_id": _STR, "captions": _BOOL,
                                 "max_participants": {"type": "integer"}, "created_at": {"type": "number"},
                                 "num_participants": {"type": "integer"}, "guests": _BOOL,
                                 "language": {"type": "string"}}},
    "Room": {"allOf": [{"$ref": _S + "RoomBrief"}, {"type": "object", "required": ["participants"], "properties": {
        "participants": {"type": "array", "items": {"$ref": _S + "Participant"}}}}]},
    "ApiKey": {"type": "object", "required": ["id", "name", "role", "created_at", "revoked_at"], "properties": {
        "id": _STR, "name": _STR, "role": {"enum": ["admin", "member", "bot"]}, "created_at": {"type": "number"},
        "revoked_at": {"type": ["number", "null"]}}},
    "Invite": {"type": "object", "required": ["token", "url", "meeting_id"], "properties": {
        "token": _STR, "url": _STR, "meeting_id": _STR, "moderator": _BOOL, "identity": _STR}},
}


def rooms_part() -> dict[str, Any]:
    grants = {"type": "object", "additionalProperties": False,
              "properties": {g: _BOOL for g in ("publish", "subscribe", "screen_share", "moderator")}}
    socket = {"summary": "The signaling WebSocket (docs/signaling.md): the first message is {type: join, token}; "
                         "browsers from other origins get 403", "tags": ["rooms"], "security": [],
              "parameters": [_ROOM],
              "responses": {"101": {"description": "switching protocols"}, "400": _ERR, "403": _ERR}}
    paths: dict[str, Any] = {
        PATH: {"get": {"summary": "This document", "tags": ["meta"], "security": [],
                       "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]},
                                                  "OpenAPI 3.1")}}},
        "/v1/rooms": {
            "post": _op("Open a room (its live meeting, or a new one); invite-only unless guests: true (admin key, or a"
                        " signed-in person holding start_meeting, and invite_guests for guests: true, who gets"
                        " token and identity: a moderator token when they started it)",
                        _json({"$ref": _S + "RoomBrief"}, "the room, already live"), "201",
                        _body({"name": {"type": "string", "pattern": ROOM_NAME.pattern}, "captions": _BOOL,
                               "max_participants": {"type": "integer", "minimum": 1, "maximum": 1000},
                               "guests": _BOOL,
                               "language": {"enum": list(ROOM_LANGUAGES), "description":
                                            "spoken language for captions: en, zh (beta) or auto (detected per "
                                            "speaker); default: the server's --asr-language"}},
                              ("name",)), errors=("503",)),
            "get": _op("Live rooms (admin key)", _json({"type": "object", "required": ["rooms"], "properties": {
                "rooms": {"type": "array", "items": {"$ref": _S + "RoomBrief"}}}}))},
        "/v1/rooms/{room}": {
            "get": _op("A live room and who is in it (admin key, or a token of its meeting)",
                       _json({"$ref": _S + "Room"}), params=[_ROOM]),
            "delete": _op("End the room's meeting for everyone (admin key or moderator token)",
                          _json({"type": "object", "required": ["ended"], "properties": {"ended": _STR}}),
                          params=[_ROOM])},
        "/v1/rooms/{room}/tokens": {"post": _op(
            "Mint an invite (meeting token) for the room's live meeting, starting one if none (admin key, with the"
            " identity it names; or a signed-in person holding invite_guests, for a guest: the identity is made"
            " by the server, guest-<16 hex>, and the identity asked for is only the default display name; no"
            " moderator grant, start_meeting too when no meeting is live)",
            _json({"$ref": _S + "Invite"}), "201",
            _body({"identity": {"type": "string", "minLength": 1, "maxLength": 128}, "name": _STR,
                   "grants": grants, "ttl": {"type": "integer", "minimum": 10, "maximum": 30 * 86400}},
                  ("identity",)), params=[_ROOM], errors=("503",))},
        "/v1/rooms/{room}/join": {"post": _op(
            "Join as a guest (no credential): the first to open a room moderates it; invite-only meetings refuse",
            _json({"$ref": _S + "Invite"}), "201", _body({"name": {"type": "string", "minLength": 1, "maxLength": 64}},
                                                         ("name",)),
            params=[_ROOM], public=True, errors=("503",))},
        "/v1/rooms/{room}/join-as-member": {"post": _op(
            "Join as oneself (a signed-in person: session cookie + X-CSRF-Token, or a user token): a meeting token "
            "for the caller's login and name, in the body only; starting a meeting takes start_meeting (not for "
            "the invitees of a scheduled meeting in its window); its starter, a scheduled meeting's organiser and "
            "admins moderate, also when they join again. API keys: 403 forbidden; meeting and record tokens: 403 "
            "out_of_scope",
            _json({"type": "object", "required": ["token", "room", "meeting_id", "moderator", "started"],
                   "properties": {"token": _STR, "room": _STR, "meeting_id": _STR, "moderator": _BOOL,
                                  "started": _BOOL, "identity": _STR, "name": _STR}}), "201",
            params=[_ROOM], errors=("503",))},
        "/v1/auth/session": {"get": {**_op(
            "Whether this browser is signed in (the session cookie only; bearer credentials change nothing): "
            "200 {signed_in} either way, so pages that work both ways ask without an error",
            _json({"type": "object", "required": ["signed_in"], "properties": {"signed_in": _BOOL}}),
            public=True), "tags": ["auth"]}},
        "/v1/rooms/{room}/placement": {"get": _op(
            "Which worker's signaling socket to connect to (admin key or a token of the room's meeting)",
            _json({"type": "object", "required": ["worker", "ws_url"], "properties": {
                "worker": _NULLABLE_STR, "ws_url": _STR}}), params=[_ROOM])},
        "/v1/rooms/{room}/ws": {"get": socket},
        "/v1/keys/{key_id}": {"delete": {**_op(
            "Revoke an API key: it authenticates nowhere (every process) within a second (admin key)",
            _json({"$ref": _S + "ApiKey"}, "the key, revoked (revoking again keeps the first time)"),
            params=[{"name": "key_id", "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": KEY_ID.pattern}}]), "tags": ["keys"]}},
        HEALTHZ: {"get": {"summary": "Liveness: the process answers HTTP (no credential)", "tags": ["meta"],
                          "security": [], "responses": {"200": _json({
                              "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                              "alive")}}},
        READYZ: {"get": {"summary": "Readiness to take joins: started, not shutting down, the chat store answers; "
                                    "503 not_ready with details.reason otherwise (no credential)", "tags": ["meta"],
                         "security": [], "responses": {"200": _json({
                             "type": "object", "required": ["status", "checks"], "properties": {
                                 "status": {"const": "ready"}, "checks": {"type": "object"}}}, "ready"),
                             "503": _ERR}}},
        "/v1/metrics": {"get": _op("Process and media counters (admin key); media=false: the process's only", _json({
            "type": "object", "required": ["process"],
            "properties": {"process": {"type": "object"}, "media": {"type": "object"}}}),
            params=[{"name": "media", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["true", "false"], "default": "true"}}])},
        "/metrics": {"get": {**_op(
            "Prometheus metrics in the text exposition format (admin key): convene_* request durations by route "
            "template, sockets, chat messages, rooms, participants, forwarded packets and bytes, caption lag, "
            "database time, process; no user, room or channel in any label",
            {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}),
            "tags": ["metrics"]}},
    }
    return {"paths": paths, "components": {"schemas": SCHEMAS}}


def sso_part() -> dict[str, Any]:
    """Sign-in methods and single sign-on (signaling/oidc_routes.py): served where chat is (it starts sessions)."""
    paths: dict[str, Any] = {
        "/v1/auth/methods": {"get": {**_op(
            "How people can sign in here: a password always; single sign-on (OpenID Connect) when configured",
            _json({"type": "object", "required": ["password", "oidc"], "properties": {
                "password": _BOOL, "oidc": _BOOL}}), public=True), "tags": ["auth"]}},
        "/v1/auth/oidc/start": {"get": {**_op(
            "Single sign-on: 302 to the identity provider (state, nonce, S256 PKCE challenge), with a sealed "
            "HttpOnly flow cookie for the callback; the provider is the organisation's of the Host (the default "
            "one's --oidc-issuer, another's `convene orgs set-sso`); 404 oidc_not_configured without one",
            {"description": "to the provider's authorization endpoint", "headers": {"Location": {"schema": _STR}}},
            "302", public=True, errors=("503",)), "tags": ["auth"]}},
        "/v1/auth/oidc/callback": {"get": {**_op(
            "Where the provider sends the browser back: the code is redeemed (PKCE), the ID token verified "
            "(JWKS signature, issuer, audience, expiry, nonce), the user created as a member or refreshed, and the "
            "session cookie set as by a password sign-in; 302 to /. A browser (Accept: text/html) that fails "
            "is sent to /signin?error=<code>; other clients get the error: oidc_state_mismatch, oidc_failed, "
            "oidc_denied, oidc_claim_invalid, oidc_subject_mismatch, oidc_account_exists, account_disabled, "
            "oidc_unavailable. The "
            "access log never writes this route's query",
            {"description": "signed in: to / (or, for a browser, to /signin?error=<code>)",
             "headers": {"Location": {"schema": _STR}, "Set-Cookie": {"schema": _STR}}}, "302",
            params=[{"name": n, "in": "query", "required": False, "schema": _STR}
                    for n in ("code", "state", "iss", "error")], public=True, errors=("503",)),
            "tags": ["auth"]}},
    }
    return {"paths": paths}


def merge(base: dict[str, Any], part: dict[str, Any]) -> None:
    """Adds `part`'s paths (operation by operation: the base keeps what it has) and component schemas."""
    for path, operations in part.get("paths", {}).items():
        target = base["paths"].setdefault(path, {})
        for method, operation in operations.items():
            target.setdefault(method, operation)
    schemas = base["components"]["schemas"]
    for name, schema in part.get("components", {}).get("schemas", {}).items():
        schemas.setdefault(name, schema)


def openapi_document(with_chat: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Convene API", "version": "1.0.0",
                 "description": "Rooms, meetings, captions and chat. Authorization: Bearer <API key (cvk_…) | "
                                "meeting token | chat user token>; errors are {error: {code, message}}."},
        "components": {"schemas": {}, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {},
    }
    merge(doc, rooms_part())
    merge(doc, captions_part())
    if with_chat:
        merge(doc, chat_document())
        merge(doc, sso_part())
        merge(doc, hooks_part())
        merge(doc, scheduled_posts_part())
        merge(doc, interactions_part())
        merge(doc, audit_part())
        merge(doc, stats_part())
        merge(doc, scheduled_meetings_part())
    return doc


def setup(app: web.Application) -> None:
    """Registers the document's route; call before chat's setup (which then leaves the path to us)."""
    async def serve(request: web.Request) -> web.Response:
        return web.json_response(openapi_document(with_chat=CHAT in request.app))

    app.router.add_get(PATH, serve)
