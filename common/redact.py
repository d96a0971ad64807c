"""Addresses as logs may keep them: secret query values, the OpenID Connect callback's whole query and the secret
path segments (incoming webhooks, slash-command response URLs) written as `[redacted]`. The access log
(signaling/access_log.py) and the error log (common/wire.py) both write addresses through `redact_url`.
"""

from __future__ import annotations

import re
import urllib.parse

SECRET_PARAMS = frozenset({"token", "sig", "access_token"})
REDACTED = "[redacted]"
# Secrets that are path segments by convention (Slack's incoming-webhook URLs): the segment after the public id.
SECRET_PATHS = (re.compile(r"(/v1/hooks/incoming/[^/?#]*/)[^/?#]+"),
                # A slash command's response_url (integrations/slash.py): /v1/commands/responses/{id}/{secret}.
                re.compile(r"(/v1/commands/responses/[^/?#]*/)[^/?#]+"))
# Routes whose whole query is secret by protocol: the OpenID Connect callback carries the authorization code
# (and state) in its address; none of it is written.
QUERYLESS_PATHS = frozenset({"/v1/auth/oidc/callback"})


def redact_url(url: str) -> str:
    """`/v1/files/x?token=abc&a=1` -> `/v1/files/x?token=[redacted]&a=1` (parameter names compared decoded)."""
    rest, hash_sep, fragment = url.partition("#")
    base, query_sep, query = rest.partition("?")
    for pattern in SECRET_PATHS:
        base = pattern.sub(lambda m: m.group(1) + REDACTED, base)
    if query_sep and _path_of(base) in QUERYLESS_PATHS:
        query = REDACTED
    elif query_sep:
        query = "&".join(_redact_pair(pair) for pair in query.split("&"))
    if hash_sep:
        fragment = redact_fragment(fragment)
    return f"{base}{query_sep}{query}{hash_sep}{fragment}"


def _path_of(base: str) -> str:
    """The path of a request target or of a full URL (a Referer), decoded, without a trailing slash."""
    path = urllib.parse.urlsplit(base).path if "://" in base else base
    return urllib.parse.unquote(path).rstrip("/")


def _redact_pair(pair: str) -> str:
    name, _, _ = pair.partition("=")
    if urllib.parse.unquote_plus(name).strip().lower() in SECRET_PARAMS:
        return f"{name}={REDACTED}"
    return pair


def redact_fragment(fragment: str) -> str:
    """Browsers never send a fragment, but a hand-made Referer or request line may carry one."""
    return REDACTED if any(f"{p}=" in fragment.lower() for p in SECRET_PARAMS) else fragment
