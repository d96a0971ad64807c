"""Who is calling: an API key (REST, operators and bots) or an access token (people in a meeting); and who reads a
meeting's record (`record_reader`): an admin key, that meeting's record token, or a live token of that meeting."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from audit import note_caller
from common.errors import Forbidden, NotFound, OutOfScope, Unauthorized
from identity.apikeys import PREFIX, ApiKey
from identity.appkeys import API_KEYS, MEETINGS, TOKENS
from identity.meetings import Meeting
from identity.orgs import DEFAULT_ORG, same_org
from identity.tokens import AccessToken, RecordToken


@dataclass(frozen=True)
class Caller:
    api_key: ApiKey | None = None
    token: AccessToken | None = None
    meeting: Meeting | None = None  # the live meeting a meeting token reaches

    @property
    def is_admin_key(self) -> bool:
        return self.api_key is not None and self.api_key.role == "admin"

    def in_room(self, room: str) -> bool:
        """A meeting token of this room's live meeting (checked when the caller was authenticated)."""
        return self.token is not None and self.meeting is not None and self.token.room == room

    def may_moderate(self, room: str) -> bool:
        if self.is_admin_key:
            return True
        return self.in_room(room) and self.token is not None and self.token.grants.moderator


def credential_of(request: web.Request) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header; None when there is no such header, its
    scheme is another or its value is empty (the one place that parses it: every door reads it the same way)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def bearer(request: web.Request) -> str:
    """The bearer credential, or `401 unauthorized` saying what is missing."""
    value = credential_of(request)
    if value is None:
        raise Unauthorized("missing 'Authorization: Bearer <API key or token>' header")
    return value


async def authenticate(request: web.Request) -> Caller:
    """An API key, or a meeting token whose meeting is live and that was not removed from it."""
    value = bearer(request)
    if value.startswith(PREFIX):
        key = await request.app[API_KEYS].verify(value)
        same_org(request, key.org, "API key")  # another organisation's key: as if it did not exist
        note_caller(key.name, f"key:{key.key_id}", key.org)  # the audit log's actor for what this request does
        return Caller(api_key=key)
    token = request.app[TOKENS].verify(value)
    same_org(request, token.org, "meeting")
    if token.is_user_token:
        raise OutOfScope("a chat user token does not reach rooms")
    caller = Caller(token=token, meeting=await request.app[MEETINGS].check(token))
    note_caller(token.identity, "meeting_token", token.org)
    return caller


async def require_admin_key(request: web.Request) -> Caller:
    caller = await authenticate(request)
    if not caller.is_admin_key:
        raise Forbidden("this endpoint needs an admin API key")
    return caller


async def require_server_admin_key(request: web.Request) -> Caller:
    """Server-wide views (metrics, every live room): an admin key of the default organisation, which runs the
    server; another organisation's admins see only their own organisation."""
    caller = await require_admin_key(request)
    if caller.api_key is None or caller.api_key.org != DEFAULT_ORG:
        raise Forbidden("server-wide views need an admin API key of the default organisation")
    return caller


@dataclass(frozen=True)
class RecordReader:
    """Who reads one meeting's record, and whether they may edit and post its notes (its moderators, admins)."""

    meeting: Meeting
    may_edit: bool
    identity: str  # the reader's identity ("" for an API key)
    name: str = ""
    admin: bool = False


async def record_reader(request: web.Request, meeting_id: str, attendees_allowed: bool = False) -> RecordReader:
    """The caller, as a reader of meeting `meeting_id`'s record, live or ended. An admin key reads any; a record
    token reads its own meeting only (`out_of_scope` for another, even one of the same room); a meeting token of
    the live meeting reads it while it runs (moderators, or everyone where `attendees_allowed`), as before."""
    value = bearer(request)
    ledger = request.app[MEETINGS]
    if value.startswith(PREFIX):
        key = await request.app[API_KEYS].verify(value)
        same_org(request, key.org, "meeting")
        if key.role != "admin":
            raise Forbidden("meeting records need an admin API key, a record token or a meeting token")
        meeting = await ledger.get(meeting_id)
        if meeting is None or meeting.org != key.org:
            raise NotFound(f"no meeting {meeting_id!r}")
        return RecordReader(meeting, may_edit=True, identity="", admin=True)
    tokens = request.app[TOKENS]
    if tokens.is_record(value):
        record = tokens.verify_record(value)
        same_org(request, record.org, "meeting")
        if record.meeting != meeting_id:
            raise OutOfScope("a record token reaches only its own meeting's record")
        meeting = await ledger.get(meeting_id)
        if meeting is None or meeting.room != record.room:
            raise NotFound(f"no meeting {meeting_id!r}")
        return RecordReader(meeting, may_edit=record.moderator, identity=record.identity, name=record.name)
    token = tokens.verify(value)
    same_org(request, token.org, "meeting")
    if token.is_user_token:
        raise OutOfScope("a chat user token does not reach meeting records")
    live = await ledger.check(token)  # meeting_ended / removed: the record token is what outlives the meeting
    if live.meeting_id != meeting_id:
        raise OutOfScope("a meeting token reaches only its own meeting")
    if not token.grants.moderator and not attendees_allowed:
        raise Forbidden("this meeting's record is for its moderators")
    return RecordReader(live, may_edit=token.grants.moderator, identity=token.identity, name=token.name)


def record_token_of(request: web.Request) -> RecordToken | None:
    """The caller's record token, if that is what it presented (None for API keys and other tokens)."""
    value = bearer(request)
    if value.startswith(PREFIX):
        return None
    tokens = request.app[TOKENS]
    return tokens.verify_record(value) if tokens.is_record(value) else None
