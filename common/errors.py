"""Typed errors and their one mapping to the wire (HTTP status + stable JSON code)."""

from __future__ import annotations

from typing import Any


class ConveneError(Exception):
    """Base of every error a client may see. `code` is stable; `message` is for people."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ConveneError):
    code, status = "bad_request", 400


class MalformedJson(BadRequest):
    code = "malformed_json"


class UnknownMessageType(BadRequest):
    code = "unknown_message_type"


class InvalidField(BadRequest):
    code = "invalid_field"


class MalformedSdp(BadRequest):
    code = "malformed_sdp"


class MessageTooLarge(ConveneError):
    code, status = "message_too_large", 413


class Unauthorized(ConveneError):
    code, status = "unauthorized", 401


class InvalidToken(Unauthorized):
    code = "invalid_token"


class ExpiredToken(Unauthorized):
    code = "token_expired"


class Forbidden(ConveneError):
    code, status = "forbidden", 403


class WrongRoom(Forbidden):
    code = "wrong_room"


class MissingGrant(Forbidden):
    code = "missing_grant"


class NotFound(ConveneError):
    code, status = "not_found", 404


class Conflict(ConveneError):
    code, status = "conflict", 409


class InvalidState(Conflict):
    code = "invalid_state"


class RateLimited(ConveneError):
    code, status = "rate_limited", 429

    def __init__(self, message: str = "", retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after
