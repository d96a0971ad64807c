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


class MeetingEnded(Forbidden):
    """The token's meeting is over: its room may hold a new meeting, which this token does not reach."""

    code = "meeting_ended"


class InviteOnly(Forbidden):
    code = "invite_only"


class RemovedFromMeeting(Forbidden):
    """A moderator removed this identity: the tokens it held then do not bring it back into that meeting."""

    code = "removed"


class OutOfScope(Forbidden):
    """A meeting token reaches its own meeting only (signaling, its chat channel, its transcript and notes)."""

    code = "out_of_scope"


class OriginRefused(Forbidden):
    """A browser page from another site tried to open one of our WebSockets (cross-site WebSocket hijacking)."""

    code = "origin_refused"


class TokenInUrl(BadRequest):
    """Credentials in a URL end up in access logs, proxies and browser history: send them elsewhere."""

    code = "token_in_url"


class InvalidLink(Unauthorized):
    code = "invalid_link"


class LinkExpired(Unauthorized):
    code = "link_expired"


class CandidateRefused(BadRequest):
    """A trickled ICE candidate the server will not probe (link-local, multicast, not an IP, over the limit)."""

    code = "candidate_refused"


class NotReady(ConveneError):
    """The server is starting, shutting down, or a part joins need is not answering (GET /readyz)."""

    code, status = "not_ready", 503


class DirectoryUnavailable(ConveneError):
    """The company directory (LDAP / AD) did not answer, or refused the service account: sign-in of directory
    users waits for it; local accounts still sign in."""

    code, status = "directory_unavailable", 503


class DirectoryNotConfigured(Conflict):
    """A directory operation on a server started without --ldap-url."""

    code = "directory_not_configured"


class InvalidConfig(ConveneError):
    """A setting the server cannot start with (a certificate that does not load, a proxy CIDR that is not one)."""

    code = "invalid_config"


class NotesPublished(Conflict):
    """A meeting's action items were posted to its chat already: the notes no longer change, nor post twice."""

    code = "notes_published"


class InvalidCredentials(Unauthorized):
    """Sign-in refused: the same answer for an unknown login, a wrong password and a disabled account."""
    code = "invalid_credentials"


class TooManyAttempts(RateLimited):
    """Sign-in refused after too many failures for the account or from the address (Retry-After says when)."""
    code = "too_many_attempts"


class CsrfRequired(Forbidden):
    """A write authenticated by the session cookie without the session's X-CSRF-Token header."""
    code = "csrf_required"


class TokenRevoked(Unauthorized):
    """A user token or session of an account that was deactivated (its token epoch moved on)."""
    code = "token_revoked"


class NotPermitted(Forbidden):
    """The caller's role does not hold the permission (identity/permissions.py); details name it."""
    code = "not_permitted"


# OpenID Connect sign-in (identity/oidc.py) -----------------------------------------------------------------

class OidcNotConfigured(NotFound):
    """Single sign-on was asked for, but the server has no --oidc-issuer / --oidc-client-id."""
    code = "oidc_not_configured"


class OidcStateMismatch(BadRequest):
    """The callback's state is not the one this browser's sign-in started with (or that sign-in expired)."""
    code = "oidc_state_mismatch"


class OidcFailed(Unauthorized):
    """The provider's answer did not prove who signed in: the code was refused, or the ID token's signature,
    issuer, audience, expiry or nonce was wrong."""
    code = "oidc_failed"


class OidcDenied(Unauthorized):
    """The provider ended the sign-in with an error (the person refused consent, or may not use this app)."""
    code = "oidc_denied"


class OidcClaimInvalid(Unauthorized):
    """The provider's claims name no usable login (missing, or not 1-128 letters, digits, '.', '@', '-', '_')."""
    code = "oidc_claim_invalid"


class OidcSubjectMismatch(Forbidden):
    """The login is bound to another subject of this provider (a reused user name), or the subject to another
    login; an administrator must sort it out."""
    code = "oidc_subject_mismatch"


class OidcAccountExists(Forbidden):
    """The provider's login names an account this server already has that SSO did not make (a local, directory
    or guest account, or any account with a password or the owner or admin role): signing in would take it over.
    An operator may allow linking non-privileged ones with --oidc-link-existing."""
    code = "oidc_account_exists"


class OidcUnavailable(ConveneError):
    """The provider's discovery document, keys or token endpoint could not be reached."""
    code, status = "oidc_unavailable", 503


class AccountDisabled(Forbidden):
    """The identity provider vouched for a person whose account here is deactivated."""
    code = "account_disabled"


# Scheduled meetings (identity/schedule.py, signaling/scheduled_api.py) --------------------------------------

class ScheduledMeetingNotFound(NotFound):
    """No scheduled meeting by that id that the caller may see (another organisation's, or one they neither
    organise nor are invited to, answers the same)."""
    code = "scheduled_meeting_not_found"


class UnknownInvitees(BadRequest):
    """Invitees must be people (owner, admin or member, active) of the organiser's organisation; details.logins
    names every one that is not."""
    code = "unknown_invitees"


class RoomAlreadyPlanned(Conflict):
    """Another scheduled meeting's window (15 minutes before its start to its end) overlaps this one's in the same
    room (which one is not said: the caller may not be invited to it)."""
    code = "room_already_planned"


class RoomInUse(Conflict):
    """A meeting is going on in the room that was not started under this scheduled meeting: a plan does not take
    over a room someone else is using."""
    code = "room_in_use"


class TooManyScheduledMeetings(Conflict):
    """The organiser already has as many scheduled meetings that have not ended as one person may
    (details.limit)."""
    code = "too_many_scheduled_meetings"
