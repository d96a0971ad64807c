"""A Slack incoming-webhook message, read and rendered to the Markdown our chat shows.

Slack's payload is `{"text", "username"?, "attachments"?, "blocks"?}` (plus presentation fields we accept and
ignore: icon_emoji, icon_url, channel, mrkdwn, …). It arrives as a JSON body or as the form field `payload=`.
Attachments (pretext, author, title with its link, text, fields, footer) and Block Kit blocks (header, section
with its fields, context, divider, image) become readable Markdown lines; Slack's `<url|label>` links become
Markdown links. With blocks the blocks are the message and `text` is only their fallback, as in Slack.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from common.names import one_line
from integrations.errors import InvalidPayload, NoText

FIELDS = {"text", "username", "attachments", "blocks"}
# Slack fields that change only how Slack draws the message (or where, which the hook's channel decides here).
IGNORED = {"icon_emoji", "icon_url", "channel", "mrkdwn", "unfurl_links", "unfurl_media", "link_names", "parse",
           "thread_ts", "as_user", "response_type", "replace_original", "delete_original", "type"}
MAX_BODY = 1024 * 1024  # the server's request size limit as well
MAX_USERNAME = 80
_MARKS = re.compile(r"[*_`~\[\]<>#|\\]")
_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)(?:\|([^>]*))?>")


@dataclass(frozen=True)
class IncomingMessage:
    text: str
    username: str | None = None


def parse_body(body: bytes, content_type: str, allow_any: bool = False) -> dict[str, Any]:
    """The payload object of a JSON body or of a form's `payload` field; only a Slack message's fields unless
    `allow_any` (a Git host's delivery)."""
    if len(body) > MAX_BODY:
        raise InvalidPayload(f"the payload may be at most {MAX_BODY // 1024} KiB")
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
            if "payload" not in form:
                raise InvalidPayload("a form post carries the message as its `payload` field")
            payload = json.loads(form["payload"][-1])
        else:
            payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload("the payload is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidPayload("the payload is a JSON object")
    unknown = [] if allow_any else sorted(set(payload) - FIELDS - IGNORED)
    if unknown:
        raise InvalidPayload(f"unknown fields: {', '.join(unknown)}", fields=unknown)
    return payload


def read_message(payload: dict[str, Any]) -> IncomingMessage:
    text, username = payload.get("text"), payload.get("username")
    attachments, blocks = payload.get("attachments") or [], payload.get("blocks") or []
    if text is not None and not isinstance(text, str):
        raise InvalidPayload("text is a string")
    if username is not None and (not isinstance(username, str) or len(username) > MAX_USERNAME):
        raise InvalidPayload(f"username is a string of at most {MAX_USERNAME} characters")
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise InvalidPayload("attachments is a list of objects")
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise InvalidPayload("blocks is a list of objects")
    parts = [render_blocks(blocks)] if blocks else [slack_to_markdown(text or "")]
    parts.extend(render_attachment(a) for a in attachments)
    rendered = "\n\n".join(p for p in parts if p.strip())
    if not rendered.strip():
        raise NoText("the message has no text, attachments or blocks to show")
    # One line, without the controls and Markdown marks that could make it read as another sender or the server.
    name = " ".join(_MARKS.sub("", one_line(username or "")).split()) or None
    return IncomingMessage(text=rendered, username=name)


def slack_to_markdown(text: str) -> str:
    """Slack mrkdwn's links and escapes to Markdown (`<https://x|label>` -> `[label](https://x)`)."""
    def link(m: re.Match[str]) -> str:
        return f"[{m.group(2)}]({m.group(1)})" if m.group(2) else m.group(1)

    return _LINK.sub(link, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def _text_of(obj: Any) -> str:
    """A Block Kit text object (`{"type": "mrkdwn"|"plain_text", "text"}`) or a plain string."""
    if isinstance(obj, str):
        return slack_to_markdown(obj)
    return slack_to_markdown(_str(obj, "text")) if isinstance(obj, dict) else ""


def render_attachment(a: dict[str, Any]) -> str:
    lines: list[str] = []
    if _str(a, "pretext"):
        lines.append(slack_to_markdown(_str(a, "pretext")))
    if _str(a, "author_name"):
        author = _str(a, "author_name")
        lines.append(f"*[{author}]({_str(a, 'author_link')})*" if _str(a, "author_link") else f"*{author}*")
    title, link = _str(a, "title"), _str(a, "title_link")
    if title:
        lines.append(f"**[{title}]({link})**" if link else f"**{title}**")
    if _str(a, "text"):
        lines.append(slack_to_markdown(_str(a, "text")))
    for f in _list(a, "fields"):
        if isinstance(f, dict) and (_str(f, "title") or _str(f, "value")):
            lines.append(f"**{_str(f, 'title')}**: {slack_to_markdown(_str(f, 'value'))}".strip())
    if _str(a, "image_url"):
        lines.append(f"![{title or 'image'}]({_str(a, 'image_url')})")
    if _str(a, "footer"):
        lines.append(f"_{slack_to_markdown(_str(a, 'footer'))}_")
    if not lines and _str(a, "fallback"):
        lines.append(slack_to_markdown(_str(a, "fallback")))
    return "\n".join(lines)


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "header":
            lines.append(f"### {_text_of(b.get('text'))}")
        elif kind == "section":
            if b.get("text"):
                lines.append(_text_of(b.get("text")))
            lines.extend(f"- {_text_of(f)}" for f in _list(b, "fields") if _text_of(f))
        elif kind == "context":
            parts = [_text_of(e) for e in _list(b, "elements") if isinstance(e, dict) and e.get("type") != "image"]
            if any(parts):
                lines.append("_" + " · ".join(p for p in parts if p) + "_")
        elif kind == "divider":
            lines.append("---")
        elif kind == "image" and _str(b, "image_url"):
            lines.append(f"![{_str(b, 'alt_text') or 'image'}]({_str(b, 'image_url')})")
    return "\n\n".join(line for line in lines if line.strip())
