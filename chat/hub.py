"""Live delivery: WebSocket sessions, each with its own sequence numbers and a replay buffer.

A session outlives its socket for `resume_seconds`: it keeps numbering and buffering the events meant
for it, so a client that reconnects with `session` and `last_seq` receives exactly what it missed.
When the gap is older than the buffer (or the session expired), the client gets `resumed: false`
and catches up with GET /v1/sync.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from chat.model import new_id


@dataclass(eq=False)
class Session:
    id: str
    login: str
    channels: set[str]
    buffer: deque[tuple[int, str]]
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    outbox: deque[str] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    detached_at: float = 0.0
    closing: bool = False
    # A meeting token's session: this one channel, never any other the user is added to.
    scope: str | None = None

    def deliver(self, body: str) -> None:
        """`body` is an event's JSON object text; it is sent as {"seq": n, ...body}."""
        self.seq += 1
        frame = '{"seq":%d,%s' % (self.seq, body[1:])
        self.buffer.append((self.seq, frame))
        if self.ws is not None:
            self.outbox.append(frame)
            self.wake.set()

    def missed_since(self, last_seq: int) -> list[str] | None:
        if last_seq > self.seq:
            return None
        if last_seq == self.seq:
            return []
        if not self.buffer or self.buffer[0][0] > last_seq + 1:
            return None
        return [frame for seq, frame in self.buffer if seq > last_seq]


class Hub:
    def __init__(self, replay_events: int, resume_seconds: float, max_outbox: int = 20_000,
                 max_per_user: int = 20) -> None:
        self._replay = replay_events
        self._max_per_user = max_per_user
        self._resume = resume_seconds
        self._max_outbox = max_outbox
        self._sessions: dict[str, Session] = {}
        self._by_channel: dict[str, set[Session]] = {}

    # Sessions ---------------------------------------------------------------------------------

    def open(self, login: str, channels: Iterable[str], scope: str | None = None) -> Session:
        self._make_room_for(login)
        session = Session(id=new_id("s_"), login=login, channels=set(channels), buffer=deque(maxlen=self._replay),
                          scope=scope)
        self._sessions[session.id] = session
        for cid in session.channels:
            self._by_channel.setdefault(cid, set()).add(session)
        return session

    def _make_room_for(self, login: str) -> None:
        """At most `max_per_user` sessions per user: the oldest goes (detached ones first), so a client that
        reconnects in a loop without resuming cannot grow the server's memory."""
        mine = [s for s in self._sessions.values() if s.login == login]
        if len(mine) < self._max_per_user:
            return
        mine.sort(key=lambda s: (s.ws is not None, s.detached_at))
        for session in mine[: len(mine) - self._max_per_user + 1]:
            if session.ws is not None and not session.closing:
                session.closing = True
                asyncio.ensure_future(session.ws.close(code=4008, message=b"too many sessions"))
            self.close(session)

    def resume(self, session_id: str, login: str, last_seq: int,
               scope: str | None = None) -> tuple[Session, list[str]] | None:
        session = self._sessions.get(session_id)
        if session is None or session.login != login or session.scope != scope or session.ws is not None:
            return None
        missed = session.missed_since(last_seq)
        if missed is None:
            self.close(session)
            return None
        return session, missed

    def attach(self, session: Session, ws: web.WebSocketResponse) -> None:
        session.ws = ws
        session.closing = False
        session.outbox.clear()
        session.wake.clear()

    def detach(self, session: Session) -> None:
        session.ws = None
        session.outbox.clear()
        session.detached_at = time.monotonic()

    def close(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        for cid in session.channels:
            members = self._by_channel.get(cid)
            if members is not None:
                members.discard(session)
                if not members:
                    del self._by_channel[cid]

    def expire(self) -> None:
        cutoff = time.monotonic() - self._resume
        for session in [s for s in self._sessions.values() if s.ws is None and s.detached_at < cutoff]:
            self.close(session)

    def end_login(self, login: str, code: int, reason: bytes) -> int:
        """Ends every session of `login` (none can resume) and closes its sockets with `code`; returns how many."""
        ended = [s for s in self._sessions.values() if s.login == login]
        for session in ended:
            if session.ws is not None:
                asyncio.ensure_future(session.ws.close(code=code, message=reason))
            self.close(session)
        return len(ended)

    def sessions_of(self, login: str) -> int:
        return sum(1 for s in self._sessions.values() if s.login == login)

    def sockets(self) -> list[web.WebSocketResponse]:
        return [s.ws for s in self._sessions.values() if s.ws is not None]

    def session_count(self) -> int:
        return len(self._sessions)

    # Events -----------------------------------------------------------------------------------

    def dispatch(self, event: dict[str, Any], text: str) -> None:
        if event.get("type") == "permissions":  # the organisation's table changed: every person's socket hears
            for session in list(self._sessions.values()):
                if session.scope is None:
                    session.deliver(text)
            return
        cid = event.get("channel")
        if not isinstance(cid, str):
            return
        if event.get("type") == "members":
            added, removed = set(event.get("added", [])), set(event.get("removed", []))
            for session in self._sessions.values():
                if session.login in added and cid not in session.channels and session.scope in (None, cid):
                    session.channels.add(cid)
                    self._by_channel.setdefault(cid, set()).add(session)
            for session in list(self._by_channel.get(cid, ())):
                if session.login in removed:
                    session.deliver(text)
                    session.channels.discard(cid)
                    self._by_channel[cid].discard(session)
        to = event.get("to")  # an ephemeral: for that one user's sessions in the channel, nobody else's
        for session in list(self._by_channel.get(cid, ())):
            if event.get("type") == "typing" and event.get("user") == session.login:
                continue
            if to is not None and session.login != to:
                continue
            session.deliver(text)
            if len(session.outbox) > self._max_outbox and session.ws is not None and not session.closing:
                # A reader this far behind resumes (or syncs) after reconnecting instead of growing memory.
                session.closing = True
                session.outbox.clear()
                asyncio.ensure_future(session.ws.close(code=1013, message=b"too slow; resume"))

    async def pump(self, session: Session, ws: web.WebSocketResponse) -> None:
        """Writes the session's outbox to its socket until the socket goes away."""
        while session.ws is ws and not ws.closed:
            await session.wake.wait()
            session.wake.clear()
            while session.outbox and session.ws is ws and not ws.closed:
                await ws.send_str(session.outbox.popleft())
