"""The OpenAPI 3.1 description of the chat API, served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

_S = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _S + name}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


_STR = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}
_LOGINS = {"type": "array", "items": _STR}
_ROLES = {"type": "array", "items": {"enum": ["owner", "admin", "member", "bot", "guest"]}}
_WATERMARK = {"enum": ["off", "important", "all"]}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": _STR, "message": _STR, "details": {"type": "object"}}, "required": ["code", "message"]}}},
    "User": {"type": "object", "properties": {"login": _STR, "role": {"enum": ["owner", "admin", "member", "guest", "bot"]},
                                              "name": _STR, "department": _STR, "created_at": {"type": "number"},
                                              "email": _STR, "title": _STR, "source": {"enum": ["local", "ldap"]}}},
    "Org": {"type": "object", "properties": {"members_create_channels": {"type": "boolean"},
            "recall_window_seconds": _INT, "max_file_bytes": _INT, "allowed_file_types": {"type": "array", "items": _STR},
            "retention_days": _INT, "remind_before_seconds": _INT, "watermark": _WATERMARK}},
    "Channel": {"type": "object", "properties": {"id": _STR, "name": _STR,
                "kind": {"enum": ["meeting", "team", "group", "direct"]}, "created_by": _STR, "topic": _STR,
                "retention_days": {"type": ["integer", "null"]}, "unread": _INT, "last_read": _INT,
                "watermark": {"enum": ["off", "important", "all", None]},
                "archived": {"type": "boolean"}, "archived_at": {"type": ["number", "null"]},
                "members": _LOGINS}},
    "LegalHold": {"type": "object", "properties": {
        "id": _STR, "name": _STR, "users": _LOGINS, "channels": _LOGINS, "created_by": _STR,
        "created_at": {"type": "number"}, "active": {"type": "boolean"}, "lifted_at": {"type": ["number", "null"]},
        "lifted_by": {"type": ["string", "null"]}}},
    "RetentionReport": {"type": "object", "properties": {
        name: _INT for name in ("messages", "files", "bytes", "blobs", "held_back", "copies", "channels")}},
    "FileLink": _obj({"url": _STR, "expires": _INT}, ("url", "expires")),
    "PermissionTable": {"type": "object", "properties": {"org": _STR, "roles": _ROLES, "permissions": {
        "type": "array", "items": {"type": "object", "properties": {
            "name": _STR, "roles": _ROLES, "default": _ROLES, "overridden": {"type": "boolean"},
            "editable": {"type": "boolean"}}}}}},
    "Attachment": {"type": "object", "properties": {"type": {"const": "file"}, "file_id": _STR, "url": _STR,
                                                    "name": _STR, "mime": _STR, "size": _INT}},
    "Task": {"type": "object", "properties": {"title": _STR, "assignee": {"type": ["string", "null"]},
             "due": {"type": ["number", "null"]}, "status": {"enum": ["open", "in_progress", "done"]},
             "notes": {"type": "array", "items": {"type": "object"}}, "reminded": _LOGINS}},
    "Message": {"type": "object", "properties": {
        "id": _STR, "channel": _STR, "author": _STR, "type": {"enum": ["text", "task", "file"]}, "content": _STR,
        "created_at": {"type": "number"}, "ord": _INT, "seq": _INT, "thread": {"type": ["string", "null"]},
        "client_id": {"type": ["string", "null"]}, "mentions": _LOGINS,
        "attachments": {"type": "array", "items": _ref("Attachment")}, "task": {"oneOf": [_ref("Task"), {"type": "null"}]},
        "reactions": {"type": "object", "additionalProperties": _LOGINS},
        "edits": {"type": "array", "items": {"type": "object"}}, "edited_at": {"type": ["number", "null"]},
        "deleted": {"type": "boolean"}, "deleted_by": {"type": ["string", "null"]},
        "important": {"type": "boolean", "description": "present (true) only when the author flagged it"}}},
    "File": {"type": "object", "properties": {"id": _STR, "name": _STR, "mime": _STR, "size": _INT, "sha256": _STR,
                                              "uploader": _STR}},
    "PostMessage": _obj({"to": _STR, "content": _STR, "type": {"enum": ["text", "task", "file"]},
                         "attachments": {"type": "array", "items": {"type": "object", "properties": {
                             "type": {"const": "file"}, "file_id": _STR, "url": {"type": "string", "format": "uri"},
                             "name": _STR}}},
                         "thread": _STR, "client_id": _STR, "important": {"type": "boolean"},
                         "task": _obj({"title": _STR, "assignee": _STR, "due": _TIME,
                                       "status": {"enum": ["open", "in_progress", "done"]}}, ("title",))}, ("to",)),
}

_ERR = {"description": "error", "content": {"application/json": {"schema": _ref("Error")}}}


def _op(summary: str, ok: str | None = None, body: dict[str, Any] | None = None, status: str = "200",
        params: tuple[tuple[str, str, str], ...] = (), tag: str = "chat") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {
        status: {"description": "ok", "content": {"application/json": {"schema": _ref(ok) if ok else {"type": "object"}}}},
        "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR, "413": _ERR, "429": _ERR}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = [{"name": n, "in": where, "required": where == "path", "schema": {"type": t}}
                            for n, where, t in params]
    return op


def _command_run(op: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/messages also answers 202 when the post was a slash command (integrations/slash.py)."""
    op["responses"]["202"] = {"description": "a slash command ran (CommandOutcome: command, invocation, "
                                             "response_type, message or ephemeral, error)",
                              "content": {"application/json": {"schema": {"type": "object"}}}}
    return op


_ID = (("id", "path", "string"),)


def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        "/v1/openapi.json": {"get": {"summary": "This document", "tags": ["chat"], "security": [],
                                     "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        "/v1/me": {"get": _op("Who the caller is: user, and for people (not meeting tokens) login, name, role,"
                              " department path, email, title and the permissions they hold; csrf when signed in"
                              " by cookie; watermark (off|important|all: the org's setting, for a meeting token its"
                              " meeting channel's) and watermark_text (name · login · date, from the credential)")},
        "/v1/watermark/tamper": {"post": _op(
            "The page's watermark overlay was removed or restyled (it draws it again): recorded in the audit log as"
            " watermark.tamper at most once a minute per person; answers {recorded}", None,
            _obj({"page": {"enum": ["chat", "meeting"]}, "what": {"type": "string", "maxLength": 64}}, ("page",)))},
        "/v1/auth/login": {"post": {**_op("Sign in with a login and password (a local password, else a bind as the"
                                          " user against the directory when one is set; 503 directory_unavailable"
                                          " when it does not answer): a session cookie (HttpOnly, SameSite=Lax)"
                                          " and the same session as a bearer token, with its CSRF token", None,
                                          _obj({"login": _STR, "password": _STR}, ("login", "password"))),
                                      "security": []}},
        "/v1/auth/logout": {"post": {**_op("Sign out: drops the session cookie"), "security": []}},
        "/v1/org": {"get": _op("Organisation settings", "Org"),
                    "patch": _op("Change organisation settings (admins)", "Org", _obj({
                        "members_create_channels": {"type": "boolean"}, "recall_window_seconds": _INT,
                        "max_file_bytes": _INT, "allowed_file_types": _LOGINS, "retention_days": _INT,
                        "remind_before_seconds": _INT, "watermark": _WATERMARK}))},
        "/v1/users": {"get": _op("List users"),
                      "post": _op("Add or update a user (admins)", "User",
                                  _obj({"login": _STR, "role": _STR, "department": _STR, "name": _STR}, ("login",)), "201")},
        "/v1/users/{login}": {"patch": _op("Change a user's role, department or name", "User",
                                           _obj({"role": _STR, "department": _STR, "name": _STR}),
                                           params=(("login", "path", "string"),))},
        "/v1/users/{login}/tokens": {"post": _op("Issue a chat token for a user (admins)", None, _obj({"ttl": _INT}),
                                                 "201", (("login", "path", "string"),))},
        "/v1/users/{login}/deactivate": {"post": _op(
            "Deactivate a user (admins): sign-in refused, their sessions and user tokens fail, their chat sockets"
            " close with 4410", None, params=(("login", "path", "string"),))},
        "/v1/departments": {"get": _op("The department tree")},
        "/v1/admin/permissions": {
            "get": _op("The organisation's permission table (owners, admins): each permission, the roles that hold it,"
                       " its default, whether the organisation overrode it and whether it may", "PermissionTable",
                       tag="admin"),
            "put": _op("Set rows of the permission table (owners, admins): a list of roles sets a row, null puts it"
                       " back to its default; all or nothing. Nobody changes a row for a role above their own;"
                       " owners and admins keep manage_users", "PermissionTable",
                       {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
                           name: {"oneOf": [_ROLES, {"type": "null"}]} for name in (
                               "create_group", "create_team_channel", "start_meeting", "invite_guests",
                               "upload_files", "manage_integrations", "read_audit", "manage_users")}},
                       tag="admin")},
        "/v1/admin/ldap/sync": {"post": {**_op(
            "Sync users, departments, roles and synced channels from the caller's organisation's directory now"
            " (manage_users; the default organisation's is --ldap-url, another's `convene orgs set-directory`):"
            " counts of users created, updated, deactivated and unchanged; 409 directory_not_configured without one, 409"
            " sync_refused when it would deactivate most directory users at once (nothing written), 409"
            " sync_running while a run of this organisation holds the lease (in any process), 503"
            " directory_unavailable when it does not answer or cuts the listing short", tag="admin"),
            "responses": {**_op("", tag="admin")["responses"], "409": _ERR, "503": _ERR}}},
        "/v1/admin/ldap/status": {"get": _op(
            "The caller's organisation's directory sync (manage_users): configured or not, the last run (counts,"
            " errors, seconds), the last error, the interval", tag="admin")},
        "/v1/channels": {"get": _op("Channels the caller is in, with unread counts"),
                         "post": _op("Create a team channel, group or direct chat", "Channel",
                                     _obj({"name": _STR, "kind": {"enum": ["team", "group", "direct"]},
                                           "members": _LOGINS, "topic": _STR}), "201")},
        "/v1/channels/browse": {"get": _op("Team channels one may join")},
        "/v1/channels/{id}": {"get": _op("A channel (id or name) and its members", "Channel", params=_ID),
                              "patch": _op("Change name, topic, retention or watermark (retention and watermark:"
                                           " edit_org; null puts them back to the organisation's). A new name"
                                           " (team and group channels; creator or manage_any_channel) is the"
                                           " audit event channel.rename; 409 channel_exists when taken",
                                           "Channel",
                                           _obj({"name": _STR, "topic": _STR,
                                                 "retention_days": {"type": ["integer", "null"]},
                                                 "watermark": {"enum": ["off", "important", "all", None]}}),
                                           params=_ID)},
        "/v1/channels/{id}/archive": {"post": {**_op(
            "Archive a team or group channel (its creator or manage_any_channel): read-only, posts answer 409"
            " channel_archived; still listed (archived: true) and readable", "Channel", params=_ID),
            "responses": {**_op("", "Channel")["responses"], "409": _ERR}}},
        "/v1/channels/{id}/unarchive": {"post": _op("Open an archived channel again (creator or manage_any_channel)",
                                                    "Channel", params=_ID)},
        "/v1/admin/legal_holds": {
            "get": _op("Legal holds, active and lifted (edit_org)", None, tag="admin"),
            "post": _op("Place a legal hold (edit_org): messages the users authored and everything in the channels"
                        " (ids or names), with their files, survive retention and recall until it is lifted",
                        "LegalHold", _obj({"name": _STR, "users": _LOGINS, "channels": _LOGINS}, ("name",)), "201",
                        tag="admin")},
        "/v1/admin/legal_holds/{id}": {"delete": _op(
            "Lift a legal hold (edit_org); the next retention run deletes what no other hold keeps; 404"
            " legal_hold_not_found when there is no active hold by that id", "LegalHold", params=_ID, tag="admin")},
        "/v1/admin/legal_holds/{id}/messages": {"get": {**_op(
            "The legal export (edit_org): NDJSON, every message the hold keeps ({source: messages, message}) and the"
            " originals recalls took from them ({source: held_copies, message, recalled: {at, by}})", params=_ID,
            tag="admin"), "responses": {"200": {"description": "NDJSON", "content": {
                "application/x-ndjson": {"schema": {"type": "string"}}}}, "401": _ERR, "403": _ERR, "404": _ERR}}},
        "/v1/admin/retention/run": {"post": _op(
            "Run retention now (edit_org; the server runs it daily): deletes messages older than their channel's"
            " (or the organisation's) retention_days with their files and blobs, skipping legal holds; answers the"
            " counts, also recorded as the audit event retention.run", "RetentionReport", tag="admin")},
        "/v1/channels/{id}/members": {"get": _op("Members", params=_ID),
                                      "post": _op("Add and remove members", None,
                                                  _obj({"add": _LOGINS, "remove": _LOGINS}), params=_ID)},
        "/v1/channels/{id}/read": {"post": _op("Mark read up to an ord", None, _obj({"ord": _INT}, ("ord",)),
                                               params=_ID)},
        "/v1/channels/{id}/messages": {"get": _op(
            "History: after=<cursor> pages forward; before=<cursor> (or nothing) gives the latest page", None,
            params=(*_ID, ("after", "query", "string"), ("before", "query", "string"), ("limit", "query", "integer"),
                    ("thread", "query", "string")))},
        "/v1/messages": {"post": _command_run(_op(
            "Post a text, task or file message (idempotent with client_id). Content `/trigger args` that names a "
            "slash command runs it instead: 202 with what happened, nothing posted as text", "Message",
            _ref("PostMessage"), "201"))},
        "/v1/messages/{id}": {"get": _op("A message", "Message", params=_ID),
                              "patch": _op("Edit (author): new content (the old text is kept in edits) and/or the"
                                           " important flag", "Message",
                                           {**_obj({"content": _STR, "important": {"type": "boolean"}}),
                                            "minProperties": 1}, params=_ID),
                              "delete": _op("Recall: the author within the org's window, admins any time; "
                                            "leaves a tombstone", "Message", params=_ID)},
        "/v1/messages/{id}/reactions": {"post": _op("React", "Message", _obj({"emoji": _STR}, ("emoji",)), params=_ID)},
        "/v1/messages/{id}/reactions/{emoji}": {"delete": _op("Take a reaction back", "Message",
                                                              params=(*_ID, ("emoji", "path", "string")))},
        "/v1/tasks": {"get": _op("Tasks across the caller's channels (assignee=me by default)", None,
                                 params=(("assignee", "query", "string"), ("status", "query", "string")))},
        "/v1/tasks/{id}": {"patch": _op("Change a task: status, title, assignee, due, or add a progress note",
                                        "Message", _obj({"status": {"enum": ["open", "in_progress", "done"]},
                                                         "title": _STR, "assignee": _STR, "due": _TIME, "note": _STR}),
                                        params=_ID)},
        "/v1/search": {"get": _op("Full-text search (CJK aware) over the caller's channels", None, params=(
            ("q", "query", "string"), ("channel", "query", "string"), ("from", "query", "string"),
            ("before", "query", "string"), ("after", "query", "string"), ("limit", "query", "integer")))},
        "/v1/sync": {"get": _op("Changes since a cursor: {updated, deleted, next, has_more}", None,
                                params=(("since", "query", "string"), ("limit", "query", "integer")))},
        "/v1/files": {"post": {**_op("Upload files (multipart, parts named 'file')", None, status="201"),
                               "requestBody": {"content": {"multipart/form-data": {"schema": {
                                   "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}}}},
        "/v1/files/{id}": {"get": {"summary": "Download (members of a channel it was posted in, or its uploader) "
                                              "with the Authorization header, or through a signed link from "
                                              "POST /v1/files/{id}/link (expires & sig); ?token= is refused",
                                   "tags": ["chat"], "security": [{"bearer": []}, {}],
                                   "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR},
                                                  {"name": "expires", "in": "query", "schema": _INT},
                                                  {"name": "sig", "in": "query", "schema": _STR}],
                                   "responses": {"200": {"description": "the file"}, "400": _ERR, "401": _ERR,
                                                 "404": _ERR}}},
        "/v1/files/{id}/link": {"post": _op("A download link for this file without a credential in it, valid "
                                            "about 5 minutes: {url: /v1/files/{id}?expires=&sig=, expires}",
                                            "FileLink", params=_ID)},
        "/v1/chat/ws": {"get": {"summary": "WebSocket of live events with per-connection seq and resume; the first "
                                           "frame is {type: auth, token, session?, last_seq?} within 10 s (else "
                                           "close 4401); browsers from other origins get 403; see docs/chat-api.md",
                                "tags": ["chat"], "security": [],
                                "responses": {"101": {"description": "switching protocols"}, "400": _ERR,
                                              "403": _ERR}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Convene chat API", "version": "1.0.0",
                 "description": "Authorization: Bearer <API key (cvk_…) | chat user token | meeting token>."},
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
