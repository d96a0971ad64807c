"""Who may open a pipe: a mutual HMAC challenge-response before any room frame crosses it.

A pipe carries a room's decrypted media and mirrors participants, and its address is in the data dir;
so both ends prove they know the server's secret before anything else. The pipe key is derived from
the secret (HMAC-SHA256(secret, "convene-pipe-v1")), so the token signing key itself never serves
another purpose. Each side sends a fresh random nonce and proves the key over both nonces, its role,
the room, its meeting and both worker ids: a proof seen on one connection is worth nothing on the next (the other
side's nonce differs), and one side's proof cannot be reflected as the other's (the role differs).

    connector -> acceptor  {"type": "hello", "room", "meeting_id", "worker_id", "nonce"}
    acceptor  -> connector {"type": "challenge", "worker_id", "nonce", "proof"}   (acceptor's proof)
    connector -> acceptor  {"type": "auth", "proof"}                              (connector's proof)

The acceptor creates nothing and reads no further frame until the connector's proof checks out; the
connector sends no room frame until the acceptor's did. Callers bound the whole exchange in time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sfu.pipe import CONTROL, HEADER

KEY_LABEL = b"convene-pipe-v1"
NONCE_BYTES = 32
HANDSHAKE_SECONDS = 5.0
MAX_HANDSHAKE_FRAME = 4096
# Room names as the REST API accepts them (signaling/rest.py ROOM_NAME); worker ids alike.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The meeting the connector's room serves (identity.meetings ids; empty when it serves none).
MEETING_ID = re.compile(r"^[A-Za-z0-9_-]{0,64}$")
CONNECTOR, ACCEPTOR = b"connector", b"acceptor"


class PipeAuthError(Exception):
    """The other end did not prove the key, or spoke out of turn: the connection is closed."""


@dataclass(frozen=True)
class PipeRoom:
    """What a pipe joins: one meeting of one room, on two workers."""

    room: str
    meeting_id: str


@dataclass(frozen=True)
class PipePeer:
    room: PipeRoom
    worker_id: str


def pipe_key(secret: bytes) -> bytes:
    return hmac.new(secret, KEY_LABEL, hashlib.sha256).digest()


def valid_name(value: str) -> bool:
    return NAME.fullmatch(value) is not None


def proof(key: bytes, role: bytes, mine: bytes, theirs: bytes, room: PipeRoom, connector: str, acceptor: str) -> str:
    """Each field length-prefixed, so no two different handshakes hash the same bytes."""
    fields = [role, mine, theirs, room.room.encode(), room.meeting_id.encode(), connector.encode(), acceptor.encode()]
    message = b"".join(len(f).to_bytes(2, "big") + f for f in fields)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _check_proof(presented: object, expected: str) -> None:
    if not isinstance(presented, str) or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise PipeAuthError("bad proof")


def _nonce(value: object) -> bytes:
    try:
        nonce = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        nonce = b""
    if len(nonce) != NONCE_BYTES:
        raise PipeAuthError("bad nonce")
    return nonce


def _send(writer: asyncio.StreamWriter, message: dict[str, str]) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    writer.write(HEADER.pack(CONTROL, len(data)) + data)


async def _receive(reader: asyncio.StreamReader, expected_type: str) -> dict[str, Any]:
    try:
        kind, length = HEADER.unpack(await reader.readexactly(HEADER.size))
        if kind != CONTROL or length > MAX_HANDSHAKE_FRAME:
            raise PipeAuthError(f"expected a small control frame, got type {kind} of {length} bytes")
        message = json.loads(await reader.readexactly(length))
    except (asyncio.IncompleteReadError, ConnectionError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PipeAuthError(f"handshake cut short: {exc!r}") from exc
    if not isinstance(message, dict) or message.get("type") != expected_type:
        raise PipeAuthError(f"expected {expected_type}")
    return message


async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes,
                  room: PipeRoom, me: str, peer: str) -> None:
    """The opening side: returns once `peer` has proved the key and we have sent our proof."""
    mine = secrets.token_bytes(NONCE_BYTES)
    _send(writer, {"type": "hello", "room": room.room, "meeting_id": room.meeting_id, "worker_id": me,
                   "nonce": mine.hex()})
    challenge = await _receive(reader, "challenge")
    if challenge.get("worker_id") != peer:
        raise PipeAuthError(f"expected worker {peer}")
    theirs = _nonce(challenge.get("nonce"))
    _check_proof(challenge.get("proof"), proof(key, ACCEPTOR, theirs, mine, room, me, peer))
    _send(writer, {"type": "auth", "proof": proof(key, CONNECTOR, mine, theirs, room, me, peer)})
    await writer.drain()


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: bytes, me: str) -> PipePeer:
    """The listening side: returns the room and worker once the connector has proved the key."""
    hello = await _receive(reader, "hello")
    name, meeting_id, peer = hello.get("room"), hello.get("meeting_id", ""), hello.get("worker_id")
    if not isinstance(name, str) or not isinstance(peer, str) or not valid_name(name) or not valid_name(peer):
        raise PipeAuthError("bad room name or worker id")
    if not isinstance(meeting_id, str) or not MEETING_ID.fullmatch(meeting_id):
        raise PipeAuthError("bad meeting id")
    room = PipeRoom(name, meeting_id)
    theirs = _nonce(hello.get("nonce"))
    mine = secrets.token_bytes(NONCE_BYTES)
    _send(writer, {"type": "challenge", "worker_id": me, "nonce": mine.hex(),
                   "proof": proof(key, ACCEPTOR, mine, theirs, room, peer, me)})
    await writer.drain()
    auth = await _receive(reader, "auth")
    _check_proof(auth.get("proof"), proof(key, CONNECTOR, theirs, mine, room, peer, me))
    return PipePeer(room, peer)
