"""The webhooks' part of the OpenAPI document (merged into /v1/openapi.json by the front door)."""

from __future__ import annotations

from typing import Any

_S = "#/components/schemas/"
_STR = {"type": "string"}
_ERR = {"description": "error ({error: {code, message}}, stable codes)",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": _STR}
_SLACK_IGNORED = ("icon_emoji", "icon_url", "channel", "mrkdwn", "unfurl_links", "unfurl_media", "link_names", "parse",
                  "thread_ts", "as_user", "response_type", "replace_original", "delete_original", "type")


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def _json(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, ok: dict[str, Any], status: str = "200", body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": ["hooks"], "responses": {
        status: ok, **{c: _ERR for c in ("400", "401", "403", "404", "413", "429")}, "default": _ERR}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


SCHEMAS: dict[str, Any] = {
    "Hook": {"type": "object", "required": ["id", "kind", "name", "channel", "owner", "bot", "created_at"],
             "properties": {"id": _STR, "kind": {"enum": ["incoming", "github", "gitlab", "outgoing"]}, "name": _STR,
                            "channel": {"type": ["string", "null"]}, "owner": _STR, "bot": _STR,
                            "created_at": {"type": "number"}, "url": _STR, "secret": _STR,
                            "trigger_words": {"type": "array", "items": _STR}}},
    "HookDelivery": {"type": "object", "properties": {
        "id": _STR, "status": {"enum": ["received", "sending", "ok", "failed"]}, "attempts": {"type": "integer"},
        "error": _STR, "created_at": {"type": "number"}, "updated_at": {"type": "number"}}},
}
_HOOK = _json({"$ref": _S + "Hook"})
_MADE = {"channel": _STR, "name": _STR}
_GIT_HEADERS = {"github": "X-Hub-Signature-256 (sha256=HMAC-SHA256(secret, body)), X-GitHub-Event, X-GitHub-Delivery",
                "gitlab": "X-Gitlab-Token (the secret), X-Gitlab-Event, Idempotency-Key or X-Gitlab-Event-UUID"}


def _receiver(kind: str) -> dict[str, Any]:
    what = "push, pull request, issue and release" if kind == "github" else "push, merge request, issue and release"
    return _op(f"A {kind} delivery ({_GIT_HEADERS[kind]}): {what} events become a post in the hook's channel; "
               "a redelivery of the same delivery id posts nothing (duplicate); other events are answered and "
               "dropped; a wrong signature or token is 401 invalid_signature. The body is the host's JSON payload.",
               _json({"type": "object", "properties": {"ok": {"type": "boolean"}, "posted": {"type": "boolean"},
                                                       "duplicate": {"type": "boolean"}}}),
               params=[_ID], public=True)


def openapi_part() -> dict[str, Any]:
    manage = "(manage_integrations)"
    paths: dict[str, Any] = {
        "/v1/hooks": {"get": _op(f"The hooks the caller may see {manage}: owners and admins see all, others their own; kind= filters",
                                 _json({"type": "object", "properties": {"hooks": {
                                     "type": "array", "items": {"$ref": _S + "Hook"}}}}),
                                 params=[{"name": "kind", "in": "query", "required": False,
                                          "schema": {"enum": ["incoming", "github", "gitlab", "outgoing"]}}])},
        "/v1/hooks/{id}": {
            "get": _op(f"A hook and its recent deliveries; last_error is the latest failed one {manage}; "
                       "another's hook answers 404 hook_not_found unless the caller is an owner or admin",
                       _json({"allOf": [{"$ref": _S + "Hook"}, {"type": "object", "properties": {
                           "deliveries": {"type": "array", "items": {"$ref": _S + "HookDelivery"}},
                           "last_error": {"oneOf": [{"$ref": _S + "HookDelivery"}, {"type": "null"}]}}}]}),
                       params=[_ID]),
            "delete": _op(f"Delete a hook: its URL, secret and bot stop working {manage}; by its maker or a role ranked "
                          "above the maker's (403 not_permitted)",
                          _json(_obj({"id": _STR, "deleted": {"type": "boolean"}})), params=[_ID])},
        "/v1/hooks/incoming": {"post": _op(
            f"Make an incoming webhook for a channel the caller is in {manage}: its url (shown once) takes "
            "Slack messages", _HOOK, "201", _obj(_MADE, ("channel", "name")))},
        "/v1/hooks/github": {"post": _op(
            f"Make a GitHub receiver for a channel {manage}: its url and secret (shown once) go in the repository's "
            "webhook settings (content type application/json)", _HOOK, "201", _obj(_MADE, ("channel", "name")))},
        "/v1/hooks/gitlab": {"post": _op(
            f"Make a GitLab receiver for a channel {manage}: its url and secret token (shown once)", _HOOK, "201",
            _obj(_MADE, ("channel", "name")))},
        "/v1/hooks/outgoing": {"post": _op(
            f"Make an outgoing webhook {manage}: messages in the channel and/or starting with a trigger word are "
            "POSTed to url, signed (X-Convene-Signature: v0=HMAC-SHA256(secret, 'v0:' + X-Convene-Request-Timestamp "
            "+ ':' + body)); a JSON reply {text} is posted back. The secret is shown once. Public addresses only "
            "unless the server runs with --hooks-allow-private", _HOOK, "201",
            _obj({"name": _STR, "url": {"type": "string", "format": "uri"}, "channel": _STR,
                  "trigger_words": {"type": "array", "items": _STR}}, ("name", "url")))},
        "/v1/hooks/incoming/{id}/{secret}": {"post": {
            **_op("Post to the hook's channel, Slack-style: {text, username?, attachments?, blocks?} as JSON or as the "
                  "form field payload=; answers 200 text/plain 'ok'; 400 invalid_payload or no_text; 404 for an "
                  "unknown id or secret; 429 past about one message a second (bursts of 20)",
                  {"description": "posted", "content": {"text/plain": {"schema": {"const": "ok"}}}},
                  body=_obj({"text": _STR, "username": _STR, "attachments": {"type": "array", "items": {"type": "object"}},
                             "blocks": {"type": "array", "items": {"type": "object"}},
                             **{name: {} for name in _SLACK_IGNORED}}),
                  params=[_ID, {"name": "secret", "in": "path", "required": True, "schema": _STR}], public=True)}},
        "/v1/hooks/github/{id}": {"post": _receiver("github")},
        "/v1/hooks/gitlab/{id}": {"post": _receiver("gitlab")},
    }
    form = {"schema": {"type": "object", "required": ["payload"], "properties": {"payload": _STR}}}
    paths["/v1/hooks/incoming/{id}/{secret}"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"] = form
    return {"paths": paths, "components": {"schemas": SCHEMAS}}
