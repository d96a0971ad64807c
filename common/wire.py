"""The one place where typed errors become HTTP responses, and JSON bodies are read safely."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from common.errors import BadRequest, ConveneError, InvalidField, MalformedJson, MessageTooLarge, RateLimited
from common.redact import redact_url

log = logging.getLogger("convene.wire")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: ConveneError) -> web.Response:
    headers = {}
    if isinstance(err, RateLimited):
        headers["Retry-After"] = str(max(1, int(err.retry_after + 0.999)))
    return web.json_response({"error": err.to_wire()}, status=err.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConveneError as err:
        return error_response(err)
    except web.HTTPRequestEntityTooLarge:
        return error_response(MessageTooLarge("request body too large"))
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
        raise
    except Exception:
        # Redacted as in the access log: an incoming webhook's address holds its secret.
        log.exception("unhandled error on %s %s", request.method, redact_url(request.raw_path))
        return web.json_response({"error": {"code": "internal_error", "message": "internal error"}}, status=500)


async def read_json_object(request: web.Request, allowed: set[str] | None = None) -> dict[str, Any]:
    """Reads a JSON object body; unknown fields are refused when `allowed` is given."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJson(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    if allowed is not None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(unknown)}", fields=unknown)
    return body


def query_flag(request: web.Request, name: str, default: bool) -> bool:
    """A `true` / `false` query parameter (`default` when absent); any other value is invalid_field."""
    value = request.query.get(name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise InvalidField(f"'{name}' is true or false", field=name)
    return value == "true"


def query_format(request: web.Request, allowed: frozenset[str] | set[str], formats: tuple[str, ...]) -> str:
    """Refuses query parameters outside `allowed` and returns `format` (the first of `formats` when absent),
    for the export-style readers (the audit log, usage statistics) that answer in several formats."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise InvalidField(f"unknown parameters: {', '.join(unknown)}", field=unknown[0])
    fmt = request.query.get("format", formats[0])
    if fmt not in formats:
        raise InvalidField(f"format is {' or '.join(formats)}", field="format")
    return fmt
