"""Meetings as the front door sees them: the durable ledger (identity/) joined to the live rooms (sfu/).

Every entry to a room goes through here. `open` starts a meeting (or finds the live one) and its room;
`room_for` takes a meeting token to the room serving that meeting (creating the room object on the first join,
also after a restart, when the meeting was not ended) and refuses a token of a meeting that is over. When a room ends (a moderator, the API, nobody left) its meeting ends in the
ledger; a room closed only because the process stops keeps its meeting resumable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from common.errors import ConveneError, MeetingEnded, NotFound, OutOfScope, TokenRevoked, WrongRoom
from identity.meetings import Meeting, MeetingLedger
from identity.orgs import org_of, plain
from identity.passwords import AccountStore
from identity.tokens import AccessToken
from sfu.room import Room
from sfu.rooms import SHUTDOWN_REASON, RoomRegistry, TooManyRooms

log = logging.getLogger("convene.signaling.meetings")


class ServerFull(ConveneError):
    code, status = "server_full", 503


class Meetings:
    def __init__(self, ledger: MeetingLedger, rooms: RoomRegistry) -> None:
        self.ledger = ledger
        self.rooms = rooms
        self.accounts = AccountStore(ledger.db)  # a deactivated person's meeting tokens join nothing
        self._ending: set[asyncio.Task[bool]] = set()  # ledger writes of rooms that ended
        rooms.on_room_ended.append(self._room_ended)
        # Called with (meeting id, identity, organisation) on each admitted join: usage analytics' participants.
        self.on_join: Callable[[str, str, str], None] | None = None

    async def open(self, room_name: str, guests: bool, captions: bool | None = None,
             max_participants: int = 100, started_by: str | None = None,
             organizer: str | None = None) -> tuple[Meeting, Room, bool]:
        """The room's live meeting and its room, starting both when there is none (True); a meeting started
        here records `started_by` (a signed-in person) and `organizer` (a scheduled meeting's)."""
        meeting, started = await self.ledger.live_or_start(room_name, guests, started_by, organizer)
        room = self._room(meeting, captions, max_participants)
        return meeting, room, started

    async def room_for(self, token: AccessToken, room_name: str) -> Room:
        """The live room of the token's meeting; `MeetingEnded` when it is over, `RemovedFromMeeting` when a
        moderator removed this identity."""
        if token.is_user_token:
            raise OutOfScope("a chat user token does not reach meetings")
        if token.org != org_of(room_name):  # another organisation's meeting is not there (identity/orgs.py)
            raise NotFound("no such meeting")
        if token.room != room_name:
            raise WrongRoom(f"this token is for room {plain(token.room)!r}")
        meeting = await self.ledger.check(token)
        account = await self.accounts.get(token.identity)
        if account is not None and not account.active:
            raise TokenRevoked("this account was deactivated")
        room = self._room(meeting)
        if self.on_join is not None:
            self.on_join(meeting.meeting_id, token.identity, token.org)
        return room

    def _room(self, meeting: Meeting, captions: bool | None = None, max_participants: int = 100) -> Room:
        try:
            room, created = self.rooms.get_or_create(meeting.room, captions=captions,
                                                     max_participants=max_participants,
                                                     meeting_id=meeting.meeting_id)
        except TooManyRooms as exc:
            raise ServerFull(str(exc)) from exc
        if room.meeting_id != meeting.meeting_id:
            # The ledger says this meeting is live but the room serves another: the room object outlived an
            # end that another process recorded. The ledger wins for the token's meeting.
            raise MeetingEnded("this room now holds another meeting")
        if created:
            log.info("room %s: serving meeting %s", meeting.room, meeting.meeting_id[:6])
        return room

    async def end(self, room_name: str, reason: str) -> bool:
        """Ends the room's meeting for everyone: the live room (if this process has it) and the ledger."""
        # The ledger first: once the room's sockets close, its meeting is over in the store for every process.
        meeting = await self.ledger.live(room_name)
        if meeting is not None:
            await self.ledger.end(meeting.meeting_id, reason)
        ended_room = await self.rooms.end(room_name, reason=reason)
        return ended_room or meeting is not None

    def _room_ended(self, room: Room, reason: str) -> None:
        if reason != SHUTDOWN_REASON and room.meeting_id:
            # Called from the room registry, not awaited: the ledger refuses the meeting's tokens in this process
            # at once (its "ended" set) and the store write follows; `drain` waits for it before the store closes.
            self.ledger.ended_here(room.meeting_id)
            task = asyncio.get_running_loop().create_task(self.ledger.end(room.meeting_id, reason))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    async def drain(self) -> None:
        """Waits for the ledger writes of rooms that ended (before the store closes)."""
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
