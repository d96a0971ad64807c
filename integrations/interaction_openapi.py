"""Bots, slash commands and interactive messages in the OpenAPI document (merged into /v1/openapi.json by the
front door)."""

from __future__ import annotations

from typing import Any

# The webhooks' part's helpers: one way to write a body schema, an answer and an error in integrations/.
from integrations.hooks_openapi import _ERR, _S, _STR, _json, _obj

_NUM = {"type": "number"}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _op(summary: str, ok: dict[str, Any], status: str = "200", body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, public: bool = False, tag: str = "integrations") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {
        status: ok, **{c: _ERR for c in ("400", "401", "403", "404", "409", "410", "429")}, "default": _ERR}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


_BUTTON_IN = _obj({"action_id": {"type": "string", "pattern": r"^[\w.\-]{1,64}$"},
                   "text": {"type": "string", "minLength": 1, "maxLength": 75},
                   "value": {"type": "string", "maxLength": 2000}, "style": {"enum": ["primary", "danger"]}},
                  ("action_id", "text"))
_EPHEMERAL = {"type": "object", "description": "shown to one user only (also sent as the socket's ephemeral event)",
              "properties": {"id": _STR, "channel": _STR, "created_at": _NUM, "text": _STR, "command": _STR,
                             "message_id": _STR, "error": {"type": "object"}}}

SCHEMAS: dict[str, Any] = {
    "Bot": {"type": "object", "required": ["login", "owner", "created_at"], "properties": {
        "login": _STR, "owner": _STR, "created_at": _NUM, "name": _STR, "key_id": _STR,
        "key": {"type": "string", "description": "the bot's API key (cvk_…), shown once"},
        "signing_secret": {"type": "string", "description": "signs clicks sent to the bot's URLs, shown once"}}},
    "SlashCommand": {"type": "object", "required": ["id", "trigger", "url", "created_by", "created_at"],
                     "properties": {"id": _STR, "trigger": _STR, "url": _STR, "description": _STR, "created_by": _STR,
                                    "created_at": _NUM,
                                    "secret": {"type": "string", "description": "signs the command's POSTs; shown "
                                                                                "once, when it is made"}}},
    "CommandOutcome": {"type": "object", "properties": {
        "command": _STR, "invocation": _STR, "response_type": {"enum": ["ephemeral", "in_channel", None]},
        "message": {"type": "object"}, "ephemeral": _EPHEMERAL, "error": {"type": "object"}, "uses": {"type": "integer"}}},
    "ActionOutcome": {"type": "object", "required": ["outcome"], "properties": {
        "outcome": {"enum": ["updated", "ephemeral", "none", "error"]}, "message": {"type": "object"},
        "ephemeral": _EPHEMERAL, "error": {"type": "object"}}},
}


def openapi_part() -> dict[str, Any]:
    manage = "manage_integrations (owners and admins by default)"
    paths: dict[str, Any] = {
        "/v1/bots": {
            "post": _op(f"Make a bot (a chat user of role bot) owned by the caller ({manage}): its API key and the "
                        "secret that signs what the server sends its integration URLs, both shown once. While the "
                        "owner's account is deactivated the bot's keys answer 401 bot_disabled and its sockets "
                        "close (4410). The login must be new: an existing user's answers 409 login_taken, "
                        "'convene' and the hook-, hook_ and cmd_ prefixes 409 login_reserved", _json({"$ref": _S + "Bot"}), "201",
                        _obj({"login": _STR, "name": _STR}, ("login",))),
            "get": _op(f"The bots and their owners ({manage})",
                       _json({"type": "object", "properties": {"bots": {"type": "array",
                                                                        "items": {"$ref": _S + "Bot"}}}}))},
        "/v1/commands": {
            "post": _op(f"Register a slash command ({manage}): a chat post `/trigger args` POSTs Slack's form "
                        "(command, text, user_id, user_name, channel_id, channel_name, response_url, trigger_id) "
                        "signed with X-Convene-Signature v0 and X-Convene-Request-Timestamp to url, and is not "
                        "posted as text. The answer within 3 s: empty, text, or {response_type: ephemeral|in_channel, "
                        "text}", _json({"$ref": _S + "SlashCommand"}), "201",
                        _obj({"trigger": {"type": "string", "pattern": "^/?[a-z0-9][a-z0-9_-]{0,31}$"},
                              "url": {"type": "string", "format": "uri"}, "description": {"type": "string",
                                                                                          "maxLength": 500}},
                             ("trigger", "url"))),
            "get": _op(f"The slash commands, without their secrets ({manage}): owners and admins see all, others their own",
                       _json({"type": "object", "properties": {"commands": {
                           "type": "array", "items": {"$ref": _S + "SlashCommand"}}}}))},
        "/v1/commands/{id}": {"delete": _op(f"Delete a slash command and its response URLs ({manage}): by its maker or a role "
                                            "ranked above the maker's (403 not_permitted)",
                                            _json({"type": "object", "properties": {"ok": {"type": "boolean"}}}),
                                            params=[_path("id")])},
        "/v1/commands/responses/{id}/{secret}": {"post": _op(
            "A slash command's response_url (the URL is the credential; the access log redacts its secret): "
            "{response_type?, text} posts in the channel (in_channel, by the command's bot user cmd_<trigger>) or "
            "shows the text to the user who ran it (ephemeral, the default). It works 5 times within 30 minutes: "
            "then 410 response_url_used_up / response_url_expired; unknown: 404 response_url_not_found",
            _json({"$ref": _S + "CommandOutcome"}),
            body=_obj({"text": {"type": "string", "minLength": 1, "maxLength": 20000},
                       "response_type": {"enum": ["ephemeral", "in_channel"]}, "replace_original": {"type": "boolean"},
                       "delete_original": {"type": "boolean"}, "mrkdwn": {"type": "boolean"}}, ("text",)),
            params=[_path("id"), _path("secret")], public=True)},
        "/v1/interactive/messages": {"post": _op(
            "A bot made with POST /v1/bots posts a message with buttons. url (where clicks go), context (any JSON, "
            "≤ 8 KB) and each button's value stay on the server: clients see only action_id, text and style",
            _json({"$ref": _S + "Message"}), "201",
            _obj({"to": _STR, "content": _STR, "thread": _STR, "url": {"type": "string", "format": "uri"},
                  "context": {}, "actions": {"type": "array", "minItems": 1, "maxItems": 10, "items": _BUTTON_IN}},
                 ("to", "actions", "url")))},
        "/v1/messages/{id}/actions/{action_id}": {"post": _op(
            "Click a button (a member of the message's channel; the chat socket's frame {type: action, message_id, "
            "action_id} does the same). The server POSTs {type, user, channel, message_id, action_id, value, "
            "context}, signed with the bot's signing secret, and applies the answer (3 s): "
            "{replace_original: true, text, actions?} updates the message for everyone (edit event); {text} is "
            "shown to the clicker alone; failures are shown to the clicker (outcome error)",
            _json({"$ref": _S + "ActionOutcome"}), params=[_path("id"), _path("action_id")])},
    }
    return {"paths": paths, "components": {"schemas": SCHEMAS}}
