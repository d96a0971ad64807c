"""Worker pipes admit only workers that know the server's secret (issue #8).

A pipe port is on loopback and its address is in the data dir; a pipe carries the room's decrypted
media and may add participants. Here raw TCP clients play the attacker against a real worker with a
real participant: without the key, with a wrong key, or replaying a proof captured from a real
handshake, they are closed having received nothing but the challenge, and the participant they try
to slip in never appears. A client holding the key (the positive control) does get the room's frames;
what it sends is still checked: a bad room name, a taken participant id or a malformed frame closes
or is refused, and the worker carries on. The wire format is written out here on purpose, so a change
to it breaks this test.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from identity.secrets_store import load_or_create_secret
from sfu.rooms import RoomRegistry
from sfu.workers import MemoryRoomDirectory, PipeServer
from signaling.appkeys import PIPES, ROOMS
from tests.conftest import RunningServer, running_server, server_config
from tests.sfu.peers import Participant, join, wait_until

HEADER = struct.Struct("!BI")
CONTROL, PACKET = 0, 1
INTRUDER = {"type": "participant", "id": "PA_intruder", "identity": "it-support", "name": "IT Support (host)"}


def frame(message: dict[str, Any] | bytes, kind: int = CONTROL) -> bytes:
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    return HEADER.pack(kind, len(data)) + data


def proof(key: bytes, role: bytes, mine: bytes, theirs: bytes, room: str, meeting: str, connector: str,
          acceptor: str) -> str:
    fields = [role, mine, theirs, room.encode(), meeting.encode(), connector.encode(), acceptor.encode()]
    return hmac.new(key, b"".join(len(f).to_bytes(2, "big") + f for f in fields), hashlib.sha256).hexdigest()


def pipe_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"convene-pipe-v1", hashlib.sha256).digest()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any] | bytes]:
    kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    data = await reader.readexactly(length)
    return kind, (json.loads(data) if kind == CONTROL else data)


async def frames_until_closed(reader: asyncio.StreamReader, timeout: float = 3.0) -> list[Any]:
    """Everything the worker sends before it closes the connection (fails if it stays open)."""
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            try:
                out.append((await read_frame(reader))[1])
            except (asyncio.IncompleteReadError, ConnectionResetError):
                return out


@dataclass
class Worker:
    server: RunningServer
    alice: Participant
    port: int
    key: bytes

    @property
    def meeting_id(self) -> str:
        room = self.server.app[ROOMS].get("span")
        assert room is not None and room.meeting_id
        return room.meeting_id

    def room_names(self) -> list[str]:
        room = self.server.app[ROOMS].get("span")
        assert room is not None
        return [p.name for p in room.participants.values()]


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    data = tmp_path / "data"
    async with running_server(server_config(data, worker_id="w1")) as server:
        alice = await join(server.url, "span", await server.token("span", "alice", name="Alice"))
        try:
            # What any process of the server reads: the pipe address in the store's directory.
            (info,) = await server.app[PIPES].directory.workers()
            yield Worker(server, alice, info.pipe_port, pipe_key(load_or_create_secret(data)))
        finally:
            await alice.close()


async def handshake(worker: Worker, key: bytes, me: str = "w9", meeting: str | None = None,
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes, bytes]:
    """Opens a pipe for room span as worker `me` would, proving `key`; returns the connection, its hello
    and auth frames."""
    room, meeting = "span", worker.meeting_id if meeting is None else meeting
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    mine = secrets.token_bytes(32)
    hello = frame({"type": "hello", "room": room, "meeting_id": meeting, "worker_id": me, "nonce": mine.hex()})
    writer.write(hello)
    kind, challenge = await read_frame(reader)
    assert kind == CONTROL and isinstance(challenge, dict) and challenge["type"] == "challenge"
    assert challenge["worker_id"] == "w1"
    theirs = bytes.fromhex(challenge["nonce"])
    # The worker proves the key first, over our fresh nonce: we could tell a fake worker.
    if key == worker.key:
        assert challenge["proof"] == proof(key, b"acceptor", theirs, mine, room, meeting, me, "w1")
    auth = frame({"type": "auth", "proof": proof(key, b"connector", mine, theirs, room, meeting, me, "w1")})
    writer.write(auth)
    return reader, writer, hello, auth


async def assert_never_joins(worker: Worker, name: str = "IT Support (host)") -> None:
    await asyncio.sleep(0.3)
    assert name not in worker.room_names()
    assert all(m.get("participant", {}).get("name") != name for m in worker.alice.client.messages)


# -- who may open a pipe -------------------------------------------------------------------------


async def test_a_client_with_the_key_gets_the_room(worker: Worker) -> None:
    """The positive control: the harness below would see frames and participants if they came."""
    reader, writer, _, _ = await handshake(worker, worker.key)
    writer.write(frame({**INTRUDER, "name": "Bob on w9"}))
    async with asyncio.timeout(3):
        _, announced = await read_frame(reader)
    assert isinstance(announced, dict) and announced["type"] == "participant" and announced["id"] == worker.alice.id
    await wait_until(lambda: "Bob on w9" in worker.room_names(), 3)
    writer.close()


async def test_the_old_unauthenticated_hello_is_closed_and_adds_no_one(worker: Worker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    writer.write(frame({"type": "hello", "room": "span", "worker_id": "w9"}) + frame(INTRUDER))
    assert await frames_until_closed(reader) == []
    await assert_never_joins(worker)


async def test_no_proof_is_closed_before_any_room_frame(worker: Worker) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    nonce = secrets.token_hex(32)
    # An intruder that skips the proof and goes straight to room frames.
    writer.write(frame({"type": "hello", "room": "span", "meeting_id": worker.meeting_id, "worker_id": "w9",
                        "nonce": nonce}) + frame(INTRUDER))
    received = await frames_until_closed(reader)
    assert [m["type"] for m in received] == ["challenge"]
    await assert_never_joins(worker)


async def test_a_wrong_key_is_closed_before_any_room_frame(worker: Worker) -> None:
    reader, writer, _, _ = await handshake(worker, pipe_key(b"guessed secret"))
    writer.write(frame(INTRUDER))
    assert await frames_until_closed(reader) == []  # nothing after the challenge
    await assert_never_joins(worker)


async def test_a_replayed_proof_is_refused(worker: Worker) -> None:
    # A real handshake, recorded as someone on the path would.
    reader, writer, hello, auth = await handshake(worker, worker.key)
    async with asyncio.timeout(3):
        _, announced = await read_frame(reader)
    assert isinstance(announced, dict) and announced["type"] == "participant"
    writer.close()
    # The same bytes again: the worker's nonce is new, so the recorded proof no longer fits.
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    writer.write(hello + auth + frame(INTRUDER))
    received = await frames_until_closed(reader)
    assert [m["type"] for m in received] == ["challenge"]
    await assert_never_joins(worker)


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(tmp_path: Path) -> None:
    rooms = RoomRegistry()
    pipes = PipeServer(rooms, MemoryRoomDirectory(), "w1", "http://127.0.0.1:1", secret=b"s" * 32,
                       handshake_timeout=0.3)
    await pipes.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", pipes.port)
        assert await frames_until_closed(reader, timeout=2.0) == []
        writer.close()
    finally:
        await pipes.close()
        await rooms.close()


async def test_workers_link_only_when_they_share_the_secret(tmp_path: Path) -> None:
    directory = MemoryRoomDirectory()
    stack: list[tuple[RoomRegistry, PipeServer]] = []
    try:
        for worker_id, secret in (("w1", b"a" * 32), ("w2", b"b" * 32), ("w3", b"a" * 32)):
            rooms = RoomRegistry()
            pipes = PipeServer(rooms, directory, worker_id, "http://127.0.0.1:1", secret=secret)
            await pipes.start()
            stack.append((rooms, pipes))
        (r1, p1), (r2, p2), (r3, p3) = stack
        r1.get_or_create("span")
        for _ in range(100):  # w1's hosting is written by a task of its own
            if await directory.hosts_of("span"):
                break
            await asyncio.sleep(0.02)
        assert [w.worker_id for w in await directory.hosts_of("span")] == ["w1"]
        r2.get_or_create("span")  # another secret: its pipe to w1 is refused
        await asyncio.sleep(0.5)
        assert p1.links == {} and p2.links == {}
        r3.get_or_create("span")  # the same secret: linked to w1 (and refused by w2)
        await wait_until(lambda: ("span", "w3") in p1.links and ("span", "w1") in p3.links, 5)
        assert ("span", "w2") not in p3.links and p2.links == {}
    finally:
        for rooms, pipes in stack:
            await pipes.close()
            await rooms.close()


# -- what an authenticated pipe may say ----------------------------------------------------------


@pytest.mark.parametrize(("room", "meeting"), [("../../etc", ""), ("a b", ""), ("", ""), ("x" * 65, ""),
                                               ("-lead", ""), ("fine", "m/../x"), ("fine", 7)])
async def test_a_bad_room_name_is_closed_and_creates_no_room(worker: Worker, room: str, meeting: object) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    writer.write(frame({"type": "hello", "room": room, "meeting_id": meeting, "worker_id": "w9",
                        "nonce": secrets.token_hex(32)}))
    assert await frames_until_closed(reader) == []
    assert worker.server.app[ROOMS].get(room) is None


async def test_a_pipe_for_another_meeting_of_the_room_is_refused(worker: Worker) -> None:
    """Both workers know the key, but their rooms of this name serve different meetings: no mixing."""
    reader, writer, _, _ = await handshake(worker, worker.key, meeting="m_an0ther")
    writer.write(frame(INTRUDER))
    assert await frames_until_closed(reader) == []  # nothing of alice's meeting
    await assert_never_joins(worker)


async def test_a_mirrored_participant_cannot_take_a_local_id(worker: Worker) -> None:
    reader, writer, _, _ = await handshake(worker, worker.key)
    writer.write(frame({**INTRUDER, "id": worker.alice.id}))
    await assert_never_joins(worker)
    room = worker.server.app[ROOMS].get("span")
    assert room is not None and room.participants[worker.alice.id].identity == "alice"
    # The pipe itself stays usable: refusing one participant is not a protocol error.
    writer.write(frame({**INTRUDER, "name": "Bob on w9"}))
    await wait_until(lambda: "Bob on w9" in worker.room_names(), 3)
    writer.close()


MALFORMED = {
    "not json": frame(b"{not json"),
    "a list": frame(b"[1, 2]"),
    "no type": frame({"id": "x"}),
    "participant without id": frame({"type": "participant", "identity": "x", "name": "x"}),
    "participant id not a string": frame({"type": "participant", "id": 7, "identity": "x", "name": "x"}),
    "track with bad codecs": frame({"type": "track", "participant_id": "PA_x", "channel": 1, "id": "t",
                                    "source": "camera", "codecs": [["x", 1]]}),
    "track with unknown source": frame({"type": "track", "participant_id": "PA_x", "channel": 1, "id": "t",
                                        "source": "teleport", "codecs": [[96, "video/VP8", 90000]]}),
    "keyframe without track": frame({"type": "keyframe", "ssrc": "x"}),
    "mute not a bool": frame({"type": "mute", "id": "t", "muted": "yes"}),
    "short packet": frame(b"\x00", kind=PACKET),
    "unknown frame type": frame(b"hello", kind=7),
    "oversized frame": HEADER.pack(CONTROL, 1 << 30),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_frame_closes_that_pipe_not_the_worker(worker: Worker, name: str) -> None:
    reader, writer, _, _ = await handshake(worker, worker.key, me="evil")
    writer.write(frame({**INTRUDER, "name": "Mallory"}))
    await wait_until(lambda: "Mallory" in worker.room_names(), 3)
    writer.write(MALFORMED[name])
    received = await frames_until_closed(reader)
    assert all(m["type"] in ("participant", "track") for m in received)  # alice's half, then closed
    await wait_until(lambda: "Mallory" not in worker.room_names(), 3)  # the closed pipe's people left
    # The worker carries on: the next pipe works, and the room still has alice.
    reader, writer, _, _ = await handshake(worker, worker.key, me="w9")
    writer.write(frame({**INTRUDER, "name": "Bob on w9"}))
    await wait_until(lambda: "Bob on w9" in worker.room_names(), 3)
    assert "Alice" in worker.room_names()
    writer.close()


async def test_a_bad_rtp_packet_on_a_known_channel_closes_the_pipe(worker: Worker) -> None:
    reader, writer, _, _ = await handshake(worker, worker.key, me="evil")
    writer.write(frame({**INTRUDER, "name": "Mallory"}))
    writer.write(frame({"type": "track", "participant_id": INTRUDER["id"], "channel": 1, "id": "TR_m",
                        "source": "microphone", "codecs": [[111, "audio/opus", 48000]]}))
    await wait_until(lambda: "Mallory" in worker.room_names(), 3)
    writer.write(frame(struct.pack("!H", 1) + b"\x80\x00", kind=PACKET))  # an RTP header cut short
    await frames_until_closed(reader)
    await wait_until(lambda: "Mallory" not in worker.room_names(), 3)
