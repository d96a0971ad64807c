# This module is where aiortc's private, name-mangled attributes are used on purpose; mypy cannot see them.
# mypy: disable-error-code="attr-defined,has-type"
"""Every use of aiortc's (and aioice's) private API lives in this module.

aiortc's public API decodes every received track and re-encodes every sent one. An SFU must do neither,
so we hook its RTP path at these seams (aiortc 1.16.0, pinned in pyproject.toml):

- receive: RTCDtlsTransport (SRTP unprotect, RtpPacket.parse) -> RtpRouter.route_rtp ->
  RTCRtpReceiver._handle_rtp_packet. `ForwardingReceiver` keeps what a receiver must do (receive
  statistics for receiver reports, RTX unwrapping, NACK generation) and hands the packet to a callback,
  skipping depayloading, the jitter buffer and the decoder thread.
- send: `ForwardingSender` parks aiortc's RTP loop and writes packets itself, rewritten per subscriber,
  protected with the transport's SRTP session and sent on the nominated ICE pair without awaiting.
  It answers RTCP feedback (NACK, PLI/FIR, REMB) through a callback and keeps the private counters that
  aiortc's sender reports read true.
- `ForwardingPeerConnection` makes RTCPeerConnection build its transceivers with those two classes.
- `install_ice_gathering` decides which addresses gather host candidates (127.0.0.1 only when asked: aioice
  leaves it out), binds them in a port range, names them by an announced address (1:1 NAT), and gathers a
  relay from every TURN URL (aiortc passes aioice only the first).

`check_seams()` fails loudly if an aiortc upgrade moves any of them; a test calls it.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import ipaddress
import logging
import os
import random
import re
import socket
import struct
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import aioice
import aioice.ice
import aioice.turn
import aiortc.rtcdtlstransport
import aiortc.rtcicetransport
import aiortc.rtcpeerconnection
import aiortc.rtp
import pylibsrtp
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    clock,
    sdp,
)
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rtcicetransport import RTCIceParameters
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RtpRouter,
    State,
    generate_certificate,
)
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    HeaderExtensionsMap,
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTCP_SDES,
    RTCP_SR,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    pack_rtcp_packet,
    is_rtcp,
    unwrap_rtx,
)

from sfu.eager import start_eagerly
from sfu.rtp import RtpWriter, SharedFields, abs_send_time, parse_forwarded, unpack_remb

log = logging.getLogger("convene.sfu.aiortc")

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"


class Feedback(Protocol):
    def on_nack(self, sequence_numbers: list[int]) -> None: ...

    def on_keyframe_request(self) -> None: ...

    def on_remb(self, bitrate: int) -> None: ...


# -- sending without awaiting ---------------------------------------------------------------------


class RouteTarget(Protocol):
    """What a receiver's compiled receive route needs of where its packets go (a Publication)."""

    def route_for(self, ssrc: int) -> tuple[Any, Any, int] | None:
        """(batched fan-out, packet cache (None: audio), layer) of a stream that may take the route now; None: not."""
        ...

    def routable(self) -> bool:
        """Nothing about its packets needs Python now, but forwarding to `one_by_one` (asked at every packet)."""
        ...

    def one_by_one(self, layer: int) -> tuple[Any, ...]:
        """Receivers (Subscriptions) that the batched fan-out of `layer` does not serve: the route hands them each
        packet of that layer."""
        ...

    def keyframe(self, packet: RtpPacket) -> bool: ...

    def gate(self) -> int:
        """sfu.selection's GATE_OFF, GATE_IN or GATE_OUT: where the stream stands in the loudest-speakers gate now
        (convene_route.gate in sfu/_fastpath.c)."""
        ...

    def absorb_routed(self, layer: int, packets: int, octets: int, levels: tuple[int, int, int],
                      voiced_at: float) -> None:
        """Counts what a route handled: packets, payload octets, (audio levels heard, voiced, loudness), and when
        (time.monotonic()) it last forwarded a voice while among the loudest (0.0: never)."""
        ...

    def routed(self, ssrc: int, fold: Callable[[], None] | None) -> None:
        """A route started (its counters are folded in by calling `fold`) or ended (None)."""
        ...

    @property
    def steady(self) -> bool:
        """True when `routable` never changes and the fan-out never holds a backlog (a client that only counts):
        the drain opens its routes once instead of before every call."""
        ...

    @property
    def sink(self) -> "RecordSink | None":
        """A client that only counts what it receives: each routed packet is logged in C and handed here as a
        record (`RECORD`), never entering Python as a packet. None: the route forwards (a Publication)."""
        ...


# (sequence number, RTP timestamp, payload octets, the payload's last 12 octets, marker, time.monotonic() arrival)
RecordSink = Callable[[int, int, int, bytes, int, float], None]
# One convene_record of sfu/_fastpath.c, as C lays it out (checked against the compiled struct's size).
RECORD = struct.Struct("=dIIIii12s")


def send_now(transport: RTCDtlsTransport, data: bytes, rtcp: bool = False) -> bool:
    """SRTP-protects `data` and sends it on the nominated ICE pair; False when not connected.

    aiortc's `_send_rtp` does the same through three awaits per packet; fan-out calls this in a loop.
    """
    if transport._state != State.CONNECTED:
        return False
    pair = transport.transport._connection._nominated.get(1)
    if pair is None:
        return False
    srtp = transport._tx_srtp
    pair.protocol.transport.sendto(srtp.protect_rtcp(data) if rtcp else srtp.protect(data), pair.remote_addr)
    return True


# -- which asyncio datagram transports hold a backlog ---------------------------------------------------
# The batched fan-out never sends on a socket whose asyncio transport queues datagrams: they would be overtaken.
# Asking every member's transport before each packet and each socket drain walked a hundred of them each time in a
# hundred-person room (3 % of the server while it joined). A backlog is rare (a full socket buffer) and starts only
# in a sendto, so the watched transports whose sendto left datagrams queued are kept here, until a look finds their
# queue empty: while this holds none, no watched transport has a backlog.
_backlogged: set[Any] = set()


def watch_backlog(transport: Any) -> bool:
    """From now on a sendto that leaves `transport` with a queue puts it in the watched set (idempotent). False
    for a transport that cannot be watched (not asyncio's selector transport): it must be asked each time."""
    if getattr(transport, "_convene_watched", False):
        return True
    if not isinstance(transport, asyncio.selector_events._SelectorDatagramTransport):
        return False
    send = transport.sendto

    def sendto(data: bytes, addr: Any = None) -> None:
        try:
            send(data, addr)
        finally:
            if transport.get_write_buffer_size():
                _backlogged.add(transport)

    transport.sendto = sendto
    transport._convene_watched = True
    if transport.get_write_buffer_size():
        _backlogged.add(transport)
    return True


def any_backlog() -> bool:
    """Whether a watched transport may hold a backlog; drops those whose queue has drained (or was cleared when
    they closed) first, so this is False again once every queue is empty."""
    if not _backlogged:
        return False
    for transport in [t for t in _backlogged if not t.get_write_buffer_size()]:
        _backlogged.discard(transport)
    return bool(_backlogged)


# -- the lean send path: the transport's own libsrtp session, in place, on the pair's socket ----------
# pylibsrtp 1.0.0 (pinned) links libsrtp 2.x statically. Its `lib.srtp_protect(ctx, buf, int *len)` protects in
# place; libsrtp 3 changed the signature (separate in/out buffers, size_t lengths), so both the version string
# inside the binding and the function's C type are checked before the path is used (`srtp_problems`).
PYLIBSRTP_VERSION = "1.0.0"
LIBSRTP_MAJOR = b"libsrtp2 2."
SRTP_PROTECT_CTYPE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
# An RTP packet we send is at most one UDP datagram; libsrtp appends a tag (16 bytes for GCM, 10 for
# HMAC-SHA1-80) and no MKI: the buffer keeps room for the largest trailer pylibsrtp allows.
PACKET_ROOM = 1500
BUFFER_SIZE = PACKET_ROOM + 16 + 128


def libsrtp_version() -> str | None:
    """The libsrtp version pylibsrtp's binding carries (it has no call for it: read its embedded string)."""
    import re

    import pylibsrtp._binding

    path = pylibsrtp._binding.__file__
    if path is None:
        return None
    with open(path, "rb") as binary:
        found = re.search(rb"libsrtp\d? (\d+\.\d+\.\d+)", binary.read())
    return found.group(1).decode() if found else None


def srtp_problems() -> list[str]:
    """What stops the in-place protect path: an unexpected pylibsrtp, libsrtp or `srtp_protect` signature."""
    import pylibsrtp
    from pylibsrtp._binding import ffi, lib

    problems = []
    if pylibsrtp.__version__ != PYLIBSRTP_VERSION:
        problems.append(f"pylibsrtp {pylibsrtp.__version__} (expected {PYLIBSRTP_VERSION}, pinned)")
    version = libsrtp_version()
    if version is None or not version.startswith("2."):
        problems.append(f"libsrtp {version} inside pylibsrtp (expected 2.x: srtp_protect's signature)")
    for name in ("srtp_protect", "srtp_protect_rtcp", "srtp_unprotect"):
        ctype = ffi.getctype(ffi.typeof(getattr(lib, name))) if hasattr(lib, name) else "missing"
        if ctype != SRTP_PROTECT_CTYPE:
            problems.append(f"pylibsrtp lib.{name} is {ctype}, expected {SRTP_PROTECT_CTYPE}")
    session_init = _init_source(__import__("pylibsrtp").Session)
    if "self._srtp = " not in session_init:
        problems.append("pylibsrtp Session no longer keeps its srtp_t in self._srtp")
    if "self._tx_srtp" not in inspect_source(RTCDtlsTransport.__init__):
        problems.append("RTCDtlsTransport no longer sets self._tx_srtp")
    return problems


def inspect_source(obj: Any) -> str:
    import inspect

    return inspect.getsource(obj)


_srtp_checked: list[str] | None = None


def lean_send_allowed() -> bool:
    """Checked once per process (at the first connection); a mismatch is logged loudly and the lean path stays
    off: packets then go through `Session.protect` and the asyncio transport, as aiortc sends them."""
    global _srtp_checked
    if _srtp_checked is None:
        _srtp_checked = srtp_problems()
        if _srtp_checked:
            log.error("SRTP fast path off: %s", "; ".join(_srtp_checked))
    return not _srtp_checked


# "lean": protect in place, send on the pair's socket; "aiortc": Session.protect + the asyncio transport
# (the path before #14, kept for comparison in tests and benchmarks); "c": the compiled fan-out when built
# (the lean path when not), one call per subscriber; "batch": "c" plus one call per packet for a publication
# layer's steady subscribers (sfu/fanout.py). The default is "batch"; CONVENE_SEND_PATH=c, lean or aiortc
# chooses another. The compiled path was off while two packets came out of order at the EAGAIN hand-over: a
# stale "queued" flag after a new pair was resolved mid-backlog (fixed: RtpPath asks the transport's queue at
# every packet), and the loopback of the test machine, which can swap neighbours on its own
# (tests/sfu/test_fast_path.py steers it to one CPU).
SEND_MODES = ("aiortc", "lean", "c", "batch")
SEND_PATH_ENV = "CONVENE_SEND_PATH"


class PathMode:
    """A process-wide choice of one path (send or receive): the environment variable's at start when it names one
    of `modes` (an unknown name is logged), else `default`; tests and benchmarks set it. A connection takes it
    when it is made (send) or when it connects (receive)."""

    def __init__(self, what: str, variable: str, modes: tuple[str, ...], default: str) -> None:
        self.what, self.variable, self.modes, self.default = what, variable, modes, default
        self.value = self.from_env()

    def from_env(self) -> str:
        wanted = os.environ.get(self.variable, "").strip().lower()
        if wanted and wanted not in self.modes:
            log.error("%s=%r is not one of %s: %s serves", self.variable, wanted, ", ".join(self.modes), self.default)
        return wanted if wanted in self.modes else self.default

    def set(self, mode: str) -> None:
        if mode not in self.modes:
            raise ValueError(f"{self.what} mode {mode!r}: {', '.join(self.modes[:-1])} or {self.modes[-1]}")
        self.value = mode


_send_path = PathMode("send", SEND_PATH_ENV, SEND_MODES, "batch")


def send_mode_from_env() -> str:
    """The process's starting send mode: CONVENE_SEND_PATH when it names one, else "batch"."""
    return _send_path.from_env()


def set_send_mode(mode: str) -> None:
    """Process-wide; peer connections created afterwards use it (tests compare the paths, benchmarks time them)."""
    _send_path.set(mode)


def send_mode() -> str:
    return _send_path.value


class RtpPath:
    """Where one connection's packets go: one per DTLS transport, shared by its senders (one buffer).

    The plaintext packet is written into `view`; `send(n)` protects it in place with the transport's own
    libsrtp session (never a second session with its key: AES-GCM nonces would repeat) and sends it on a
    duplicate of the nominated pair's socket. When that socket's buffer is full (EAGAIN) the packet goes to
    the asyncio transport, which queues it; so do all packets while the transport holds anything (ours, or
    aiortc's own RTCP/STUN/DTLS), so per socket they leave in the order they were sent. The transport's
    queue is asked at every packet, not remembered in a flag: a flag went stale when a new nominated pair on
    the same socket was resolved mid-backlog and later packets overtook the queued ones. A TURN pair's
    packets always go through the transport (they must be wrapped for the relay). A new nominated pair or a
    new session is picked up at the next packet.
    """

    __slots__ = ("transport", "_pair", "_session", "_ctx", "_sock", "_aio", "_addr", "buf", "view",
                 "_len", "_protect", "mode", "inplace", "lean", "compiled", "_c", "_blocked", "fast_sends", "queued_sends", "dropped", "watchers", "__weakref__")

    def __init__(self, transport: RTCDtlsTransport, mode: str) -> None:
        from pylibsrtp._binding import ffi, lib

        self.transport = transport
        self.mode = mode
        self._pair: object = None
        self._session: object = None
        self._ctx: Any = None
        self._sock: socket.socket | None = None
        self._aio: Any = None
        self._addr: tuple[str, int] = ("", 0)
        self.buf = ffi.new("unsigned char[]", BUFFER_SIZE)
        self.view = memoryview(ffi.buffer(self.buf))
        self._len = ffi.new("int *")
        self._protect = lib.srtp_protect
        self.inplace = False  # resolved: protect in place with the session's own libsrtp context
        self.lean = False  # and send on our duplicate of the pair's socket (not a TURN pair)
        self.compiled = False  # and through the compiled send (built, and the send mode is "c")
        self._c: tuple[Any, ...] = ()  # the compiled send's fixed arguments for this pair
        self._blocked = ffi.new("int *")
        self.fast_sends = 0
        self.queued_sends = 0
        self.dropped = 0
        # Batched fan-out entries sending on this path (sfu/fanout.py): told when the pair or state changes.
        self.watchers: set[Callable[[], None]] = set()
        transport.on("statechange", self._on_state)

    def _on_state(self) -> None:
        self.changed()
        if self.transport._state in (State.CLOSED, State.FAILED):
            self._close_socket()

    def changed(self) -> None:
        """The pair, session or state may have changed: batched entries leave (Python resolves them again)."""
        for leave in list(self.watchers):
            leave()

    def _close_socket(self) -> None:
        # Our duplicate holds the port open: it closes with the connection, not at garbage collection.
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _resolve(self, pair: Any) -> None:
        self.changed()
        self._close_socket()
        connection = self.transport.transport._connection
        if type(connection._nominated) is dict:  # aioice assigns pairs into it: a new one tells us at once
            connection._nominated = WatchedPairs(connection._nominated)
        if isinstance(connection._nominated, WatchedPairs):
            connection._nominated.paths.add(self)
        self._pair = pair
        self._session = self.transport._tx_srtp
        self._ctx = self._session._srtp[0]
        self._aio = pair.protocol.transport
        self._addr = pair.remote_addr
        self.inplace = self.mode != "aiortc" and lean_send_allowed()
        # Never past a TURN pair's transport: its packets must be wrapped for the relay.
        self.lean = self.inplace and pair.local_candidate.type != "relay"
        sock = self._aio.get_extra_info("socket") if self.lean else None
        if sock is None:
            self.lean = False
            return
        self._sock = socket.socket(fileno=os.dup(sock.fileno()))
        self._sock.setblocking(False)
        self._resolve_compiled()

    def _resolve_compiled(self) -> None:
        compiled = compiled_send()
        self.compiled = compiled is not None and self.mode in ("c", "batch") and self._sock is not None
        if not self.compiled or compiled is None or self._sock is None:
            return
        c_ffi, c_lib, protect = compiled
        family = self._sock.family
        address = c_ffi.new("char[]", 128)  # room for a sockaddr_in6
        length = c_lib.convene_sockaddr(address, family, socket.inet_pton(family, self._addr[0]), self._addr[1])
        if length < 0:
            self.compiled = False
            return
        # Addresses as plain integers cross from pylibsrtp's cffi module to ours: the same process, same objects.
        from pylibsrtp._binding import ffi

        ctx = c_ffi.cast("void *", int(ffi.cast("intptr_t", self._ctx)))
        buf = c_ffi.cast("void *", int(ffi.cast("intptr_t", self.buf)))
        self._c = (c_lib.convene_send, protect, ctx, self._sock.fileno(), address, length, buf, c_ffi.NULL)

    def ready(self) -> bool:
        """Connected with a nominated pair (resolved for it); False: drop the packet."""
        transport = self.transport
        if transport._state is not State.CONNECTED:
            return False
        pair = transport.transport._connection._nominated.get(1)
        if pair is not self._pair or transport._tx_srtp is not self._session:
            if pair is None:
                return False
            self._resolve(pair)
        return True

    def load(self, data: bytes) -> int:
        """Copies a packet built elsewhere (RTX, simulcast bots, padding) into the buffer."""
        n = len(data)
        if n > PACKET_ROOM:
            raise ValueError(f"RTP packet of {n} bytes does not fit a datagram")
        self.view[:n] = data
        return n

    def send(self, n: int) -> bool:
        """Protects and sends the `n` plaintext bytes in `view`; call `ready()` first."""
        if not self.inplace:
            self._aio.sendto(self._session.protect(bytes(self.view[:n])), self._addr)
            return True
        length = self._len
        length[0] = n
        if self._protect(self._ctx, self.buf, length) != 0:
            self.dropped += 1
            return False
        if self._sock is None:  # a TURN pair: the relay's transport wraps it
            self._aio.sendto(bytes(self.view[:length[0]]), self._addr)
            return True
        return self.send_protected(length[0])

    def send_compiled(self, constant: bytes, second: int, seq: int, timestamp: int, ssrc: int,
                      send_time: bytes | None, level_word: int, padding: int, payload: bytes) -> bool:
        """Rewrite, protect and send in one C call (`compiled` paths only; ready() first)."""
        aio = self._aio
        direct = not aio.get_write_buffer_size()  # the transport holds nothing: ours is the next datagram
        send, protect, ctx, fd, address, length, buf, null = self._c
        blocked = self._blocked
        n = send(protect, ctx, fd, address, length, buf, constant, len(constant), second, seq, timestamp, ssrc,
                 null if send_time is None else send_time, level_word, padding, payload, len(payload),
                 1 if direct else 0, blocked)
        if n < 0:
            self.dropped += 1
            return False
        if not direct or blocked[0]:
            # Protected in the buffer, not sent: the transport queues it behind what it holds, in order.
            self.queued_sends += 1
            aio.sendto(bytes(self.view[:n]), self._addr)
            return True
        self.fast_sends += 1
        return True

    def batchable(self) -> bool:
        """Batched fan-out may send on this path now: compiled, resolved for the current pair, no backlog."""
        return (self.mode == "batch" and self.compiled and self._sock is not None and batch_built()
                and self._pair is self._pair_now() and self.transport._tx_srtp is self._session
                and self.transport._state is State.CONNECTED and not self._aio.get_write_buffer_size())

    def _pair_now(self) -> Any:
        return self.transport.transport._connection._nominated.get(1)

    def c_target(self) -> tuple[int, int, int, bytes]:
        """(libsrtp session, buffer address, socket fd, sockaddr bytes) for a batched entry (`batchable()` first)."""
        _, _, _, fd, address, length, _, _ = self._c
        from pylibsrtp._binding import ffi

        compiled = compiled_send()
        assert compiled is not None and self._sock is not None
        return (int(ffi.cast("intptr_t", self._ctx)), int(ffi.cast("intptr_t", self.buf)), fd,
                bytes(compiled[0].buffer(address, length)))

    def aio_transport(self) -> Any:
        """The asyncio transport (its get_write_buffer_size() tells a backlog)."""
        return self._aio

    def queue_protected(self, n: int) -> None:
        """The batch met EAGAIN: the `n` protected bytes in the buffer go to the transport's queue, in order."""
        self.queued_sends += 1
        self._aio.sendto(bytes(self.view[:n]), self._addr)

    def send_protected(self, n: int) -> bool:
        """Sends the `n` protected bytes in `view` (the compiled fan-out protects them itself)."""
        aio = self._aio
        if aio.get_write_buffer_size():
            self.queued_sends += 1
            aio.sendto(bytes(self.view[:n]), self._addr)
            return True
        sock = self._sock
        assert sock is not None
        try:
            sock.sendto(self.view[:n], self._addr)
        except BlockingIOError:
            # The socket buffer is full: the transport queues this (and, until it drained, what follows).
            self.queued_sends += 1
            aio.sendto(bytes(self.view[:n]), self._addr)
            return True
        except OSError:
            self.dropped += 1  # as the asyncio transport does: the peer's ICE consent decides
            return False
        self.fast_sends += 1
        return True


# What a batched fan-out needs of a sender (ForwardingSender.batch_source): its path, its header shapes
# (RtpWriter.batch_shapes) and its SSRC.
BatchSource = tuple[RtpPath, tuple[tuple[bytes, int], tuple[bytes, int], bool, int], int]


class WatchedPairs(dict):  # type: ignore[type-arg]
    """aioice's nominated pairs (component -> pair): a new nomination tells the send paths at once, so batched
    entries never send to a stale pair and nothing is checked per packet."""

    def __init__(self, pairs: dict[int, Any]) -> None:
        super().__init__(pairs)
        self.paths: "weakref.WeakSet[RtpPath]" = weakref.WeakSet()

    def _changed(self) -> None:
        for path in list(self.paths):
            path.changed()

    def __setitem__(self, key: int, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: int) -> None:
        super().__delitem__(key)
        self._changed()

    def clear(self) -> None:
        super().clear()
        self._changed()


def compiled_buffer(pointer: Any, n: int) -> bytes:
    """The first `n` bytes at a pointer of the compiled module, copied."""
    compiled = compiled_send()
    assert compiled is not None
    data: bytes = compiled[0].buffer(pointer, n)[:]
    return data


def route_built() -> bool:
    """The compiled module has the receive route (a module built before it has not)."""
    compiled = compiled_send()
    return compiled is not None and hasattr(compiled[1], "convene_receive")


def batch_built() -> bool:
    """The compiled module has the batched fan-out (a module built before it has only the per-subscriber call)."""
    compiled = compiled_send()
    return compiled is not None and hasattr(compiled[1], "convene_fanout")


def shared_send_time(packet: RtpPacket) -> bytes:
    """abs-send-time of the packet being fanned out: one value for all its subscribers, whatever the path."""
    return _shared.of(packet, time.time)


_compiled: tuple[Any, Any, Any] | None = None
_compiled_looked = False


def compiled_send() -> tuple[Any, Any, Any] | None:
    """(ffi, lib, srtp_protect as void *) of the compiled send when it is built (sfu/fastpath_build.py)."""
    global _compiled, _compiled_looked
    if not _compiled_looked:
        _compiled_looked = True
        try:
            import _convene_fastpath  # type: ignore[import-not-found]
        except ImportError:
            log.info("compiled send path not built (python -m sfu.fastpath_build): the Python path serves")
        else:
            from pylibsrtp._binding import ffi, lib

            c_ffi = _convene_fastpath.ffi
            protect = c_ffi.cast("void *", int(ffi.cast("intptr_t", ffi.addressof(lib, "srtp_protect"))))
            _compiled = (c_ffi, _convene_fastpath.lib, protect)
    return _compiled


_paths: "weakref.WeakKeyDictionary[RTCDtlsTransport, RtpPath]" = weakref.WeakKeyDictionary()


def rtp_path(transport: RTCDtlsTransport, mode: str) -> RtpPath:
    """The one path (buffer, socket, session) of this transport; `mode` is its connection's send mode."""
    path = _paths.get(transport)
    if path is None:
        path = _paths[transport] = RtpPath(transport, mode)
    return path


def connection_rtp_path(pc: RTCPeerConnection) -> RtpPath | None:
    """The send path of a connection's media transport once it sent (for reports and tests)."""
    transport = connection_transport(pc)
    return _paths.get(transport) if transport is not None else None


def tap_plaintext_rtp(pc: RTCPeerConnection, sink: Callable[[bytes], None]) -> None:
    """Hands `sink` every RTP packet this connection receives, as the bytes SRTP unprotect gave (tests compare
    what the send paths produced, byte for byte). Call once the connection has its transport."""
    transport = connection_transport(pc)
    assert transport is not None
    handle = transport._handle_rtp_data

    async def tapped(data: bytes, arrival_time_ms: int) -> None:
        sink(data)
        await handle(data, arrival_time_ms)

    transport._handle_rtp_data = tapped  # type: ignore[method-assign]
    _taps[transport] = sink  # the inline path's too (InlineReceive), now or when it connects
    inline = getattr(getattr(transport.transport, "_connection", None), "inline", None)
    if inline is not None:
        inline.tap = sink


_taps: "weakref.WeakKeyDictionary[RTCDtlsTransport, Callable[[bytes], None]]" = weakref.WeakKeyDictionary()


async def park(started: asyncio.Event, exited: asyncio.Event) -> None:
    """Stands in for one of aiortc's per-object loops: signals it runs, waits to be cancelled, and
    signals it ended (aiortc's stop() waits for both events)."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass
    exited.set()


# -- receiving ------------------------------------------------------------------------------------

# aiortc's NackGenerator scans its whole set of missing numbers after every packet (up to 128 of them while there
# is loss, which is when a receiver is busiest); `nack_add` drops the one number an in-order packet pushes out of
# the window instead, and gives the same answers (tests/sfu/test_rtp_parse.py checks it against aiortc's).
def nack_add(nack: NackGenerator, packet: RtpPacket) -> bool:
    """NackGenerator.add: marks a packet received; True when it revealed missing numbers.

    After every add, the set holds only numbers in the window of RTP_HISTORY_SIZE below the highest (aiortc's
    `truncate`). So a packet one past the highest pushes out exactly one number, and a late packet none; only a
    packet that jumps ahead needs the full truncate. A jump adds only the numbers the window keeps: aiortc added
    every number up to 32,767 of them (and dropped all but 128 again), which a peer could ask for with each packet.
    """
    seq = packet.sequence_number
    top = nack.max_seq
    if top is None:
        nack.max_seq = seq
        return False
    missing = nack.missing
    delta = (seq - top) & 0xFFFF
    if delta == 1:
        if missing:
            missing.discard((top - RTP_HISTORY_SIZE) & 0xFFFF)
        nack.max_seq = seq
        return False
    if 0 < delta < 0x8000:
        for n in range(max(1, delta - RTP_HISTORY_SIZE), delta):
            missing.add((top + n) & 0xFFFF)
        nack.max_seq = seq
        nack.truncate()
        return True
    missing.discard(seq)  # late (a retransmission, reordering) or a duplicate: the window does not move
    return False


def revealed(nack: NackGenerator, top: int, seq: int) -> list[int]:
    """The missing numbers a packet `seq` revealed after the highest one before it, `top` (window-bounded)."""
    delta = (seq - top) & 0xFFFF
    first = max(1, delta - RTP_HISTORY_SIZE)
    return [n for n in ((top + k) & 0xFFFF for k in range(first, delta)) if n in nack.missing]


def extension_ids(extensions: HeaderExtensionsMap) -> HeaderExtensions:
    """The ids a header-extension map configured (one object, changed in place by `configure`)."""
    ids: HeaderExtensions = extensions._HeaderExtensionsMap__ids
    return ids



class ForwardingReceiver(RTCRtpReceiver):
    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        # Built as an audio receiver, then named by its kind: a video RTCRtpReceiver makes a receive-side bandwidth
        # estimator (thousands of rate buckets, ~1 ms per receiver: every m-line of a join) and a jitter buffer
        # that a forwarding receiver never uses (`_handle_rtp_packet` and `receive` are ours).
        super().__init__("audio", transport)
        self._RTCRtpReceiver__kind = kind
        self.kind = kind
        self.on_packet: Callable[[RtpPacket], None] | None = None
        self.on_sender_report: Callable[[int, int, int], None] | None = None
        self.media_ssrc: int | None = None
        self.packets = 0
        # One NACK generator per stream: a simulcast m-line carries several SSRCs.
        self._nacks: dict[int, NackGenerator] | None = {} if kind == "video" else None
        self._ssrc_of_rid: dict[str, int] = {}
        # The base class's private tables, looked up once (name-mangled attributes).
        self._codecs: dict[int, Any] = self._RTCRtpReceiver__codecs
        self._streams: dict[int, StreamStatistics] = self._RTCRtpReceiver__remote_streams
        self._rtx_ssrc: dict[int, int] = self._RTCRtpReceiver__rtx_ssrc
        self._rtx_apt: dict[int, int] = {}
        # The compiled receive route (ReceiveRoute): where packets go (set when bound to a publication) and the
        # routes armed per media SSRC, which hold this receiver's statistics while armed.
        self.route_target: RouteTarget | None = None
        self.routes: dict[int, ReceiveRoute] = {}

    async def receive(self, parameters: Any) -> None:
        """Like the base class, minus the decoder thread."""
        if self._RTCRtpReceiver__started:
            return
        for codec in parameters.codecs:
            self._codecs[codec.payloadType] = codec
            if codec.mimeType.lower().endswith("/rtx") and isinstance(codec.parameters.get("apt"), int):
                self._rtx_apt[codec.payloadType] = codec.parameters["apt"]
        for encoding in parameters.encodings:
            if encoding.rtx:
                self._rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
            self.media_ssrc = encoding.ssrc
        transport: RTCDtlsTransport = self.transport
        transport._register_rtp_receiver(self, parameters)
        router: RtpRouter = transport._rtp_router
        # aiortc registers only the media SSRCs: with two video m-lines sharing payload types, RTX
        # packets would be dropped as ambiguous. Route the RTX SSRCs to us too.
        for rtx_ssrc in self._rtx_ssrc:
            router.ssrc_table[rtx_ssrc] = self
        self._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(self._run_rtcp())
        self._RTCRtpReceiver__started = True

    async def _run_rtcp(self) -> None:
        """Parked: the connection sends one receiver report for all its receivers (`report_blocks`)."""
        await park(self._RTCRtpReceiver__rtcp_started, self._RTCRtpReceiver__rtcp_exited)

    @property
    def received(self) -> bool:
        """Some stream has reached it (a stream's statistics are made before its route is armed)."""
        return bool(self._streams)

    def report_blocks(self) -> list[RtcpReceiverInfo]:
        """RFC 3550 report blocks for every stream this receiver gets, as aiortc's own timer builds."""
        for route in list(self.routes.values()):
            route.pull()
        blocks = []
        lsr_by_ssrc: dict[int, int] = self._RTCRtpReceiver__lsr
        lsr_time: dict[int, float] = self._RTCRtpReceiver__lsr_time
        for ssrc, stream in self._streams.items():
            if stream.max_seq is None:
                continue
            lsr = lsr_by_ssrc.get(ssrc, 0)
            dlsr = 0
            if ssrc in lsr_time:
                delay = time.time() - lsr_time[ssrc]
                if 0 < delay < 65536:
                    dlsr = int(delay * 65536)
            blocks.append(RtcpReceiverInfo(ssrc=ssrc, fraction_lost=stream.fraction_lost,
                                           packets_lost=stream.packets_lost, highest_sequence=stream.max_seq,
                                           jitter=stream.jitter, lsr=lsr, dlsr=dlsr))
        return blocks

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.handle_rtp(packet)

    def handle_rtp(self, packet: RtpPacket) -> None:
        """Statistics, RTX unwrapping, NACKs upstream, then `on_packet`: synchronous, so the inline receive path
        (`InlineReceive`) calls it where the datagram arrives. While routes are armed, they hold the statistics:
        taken back first, handed back after."""
        routes = self.routes
        if not routes:
            self._handle(packet)
            if self.route_target is not None:
                ReceiveRoute.arm(self, packet)
            return
        for route in list(routes.values()):
            route.pull()
        self._handle(packet)
        for route in list(routes.values()):
            route.push()
        if packet.ssrc not in routes:
            ReceiveRoute.arm(self, packet)

    def _handle(self, packet: RtpPacket) -> None:
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        stats = self._streams.get(packet.ssrc)
        if stats is None:
            stats = self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        apt = self._rtx_apt.get(packet.payload_type)
        if apt is not None:
            original_ssrc = self._rtx_ssrc.get(packet.ssrc)
            if original_ssrc is None:
                # Simulcast RTX streams are not in the SDP: they name their layer's rid instead.
                rid = packet.extensions.repaired_rtp_stream_id
                original_ssrc = self._ssrc_of_rid.get(rid) if rid is not None else None
                if original_ssrc is None:
                    return
                self._rtx_ssrc[packet.ssrc] = original_ssrc
            if len(packet.payload) < 2:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
        else:
            self.media_ssrc = packet.ssrc
            rid = packet.extensions.rtp_stream_id
            if rid is not None:
                self._ssrc_of_rid[rid] = packet.ssrc
        if self._nacks is not None:
            nack = self._nacks.get(packet.ssrc)
            if nack is None:
                nack = self._nacks[packet.ssrc] = NackGenerator()
            top = nack.max_seq
            if nack_add(nack, packet) and top is not None:
                # Only the numbers this packet revealed. aiortc sends the whole missing set at every new gap, so
                # under loss each older number was asked for again and again, and resent as often (16 % of what
                # 100 load bots received were such duplicates, #14); what is still missing is asked for once
                # more at the next report (`renack`).
                self.send_nack(packet.ssrc, revealed(nack, top, packet.sequence_number))
        self.packets += 1
        sink = self.on_packet
        if sink is not None:
            sink(packet)

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        await super()._handle_rtcp_packet(packet)
        if isinstance(packet, RtcpSrPacket) and self.on_sender_report is not None:
            info = packet.sender_info
            self.on_sender_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)

    @property
    def rtcp_ssrc(self) -> int | None:
        value: int | None = self._RTCRtpReceiver__rtcp_ssrc
        return value

    def renack(self) -> int:
        """Asks once more for what is still missing (called with the connection's reports, ~1/s); the missing
        set keeps only the last 128 numbers, so a number is asked for at most twice or so."""
        asked = 0
        for route in list(self.routes.values()):
            route.pull()
        for ssrc, nack in (self._nacks or {}).items():
            if nack.missing:
                self.send_nack(ssrc, sorted(nack.missing))
                asked += 1
        return asked

    def send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        if self.rtcp_ssrc is None:
            return
        packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=self.rtcp_ssrc, media_ssrc=media_ssrc)
        packet.lost = lost
        send_now(self.transport, bytes(packet), rtcp=True)

    def send_pli(self, ssrc: int | None = None) -> bool:
        media_ssrc = ssrc if ssrc is not None else self.media_ssrc
        if self.rtcp_ssrc is None or media_ssrc is None:
            return False
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self.rtcp_ssrc, media_ssrc=media_ssrc)
        return send_now(self.transport, bytes(packet), rtcp=True)

    def send_remb(self, bitrate: int) -> bool:
        if self.rtcp_ssrc is None or self.media_ssrc is None:
            return False
        ssrcs = sorted(set(self._ssrc_of_rid.values())) or [self.media_ssrc]
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=self.rtcp_ssrc, media_ssrc=0,
                                fci=pack_remb_fci(bitrate, ssrcs))
        return send_now(self.transport, bytes(packet), rtcp=True)


# -- sending --------------------------------------------------------------------------------------

# abs-send-time of the packet being fanned out, computed once for all its subscribers.
_shared = SharedFields()


class ForwardingSender(RTCRtpSender):
    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.feedback: Feedback | None = None
        self.mid: str | None = None
        self.on_started: Callable[[], None] | None = None
        self._ext_map = self._RTCRtpSender__rtp_header_extensions_map
        self._writer: RtpWriter | None = None  # once negotiated (send())
        # A simulcast sender (bots) sends layers on SSRCs of its own: RTCP about them must reach it.
        self.extra_ssrcs: list[int] = []
        # The media SSRC the last feedback (NACK, PLI) named, for senders of several streams.
        self.feedback_ssrc: int | None = None
        self._path: RtpPath | None = None
        self.send_mode = _send_path.value  # its connection's (ForwardingPeerConnection sets it)
        self._rtx_pt: dict[int, int] = {}  # media payload type -> its RTX payload type
        self._rtx_seq = 0
        self._has_report = False
        self._live = False
        self.packets_sent = 0
        self.bytes_sent = 0
        # What this SSRC sent last, so a later track on a reused transceiver can continue from it.
        self.last_sent: tuple[int, int, float] | None = None
        # Set while a batched fan-out entry sends for this sender: folds its counters in (sender reports).
        self.flush_batch: Callable[[], None] | None = None
        # Media packets counted at the last two reports (RFC 3550's "the last report or the previous one").
        self._counts_reported: tuple[int, int] = (-1, -1)
        self._sdes: tuple[str, bytes] | None = None  # (CNAME, the SDES packet of this SSRC and CNAME)

    def set_msid(self, stream_id: str, track_id: str) -> None:
        """The `a=msid` our offers announce for this sender."""
        self._stream_id = stream_id
        self._track_id = track_id

    async def send(self, parameters: Any) -> None:
        first = not self._RTCRtpSender__started
        await super().send(parameters)
        if not first:
            return
        for ssrc in self.extra_ssrcs:
            self.transport._rtp_router.register_sender(self, ssrc)
        self.mid = parameters.muxId
        ids = self._ext_map._HeaderExtensionsMap__ids
        self._writer = RtpWriter(self.mid, ids.mid or 0, ids.abs_send_time or 0, ids.audio_level or 0,
                                 ids.rtp_stream_id or 0)
        for codec in parameters.codecs:
            apt = codec.parameters.get("apt")
            if codec.mimeType.lower().endswith("/rtx") and isinstance(apt, int):
                self._rtx_pt[apt] = codec.payloadType
        if self.on_started is not None:
            self.on_started()

    async def _run_rtp(self, codec: Any) -> None:
        """Parked: packets are written by `write`, never pulled from a track."""
        await park(self._RTCRtpSender__rtp_started, self._RTCRtpSender__rtp_exited)

    async def _run_rtcp(self) -> None:
        """Parked: the connection sends one compound report for all its senders (`sender_report`)."""
        await park(self._RTCRtpSender__rtcp_started, self._RTCRtpSender__rtcp_exited)

    def sender_report(self) -> tuple[bytes, bytes] | None:
        """This sender's SR and its SDES (CNAME) packet, as aiortc's own timer writes them; None before it sent,
        and when it sent nothing since the report before last. RFC 3550 (6.4) sends an SR only then: a slot idle
        since (a voice the gate closed, a camera paused) would otherwise repeat the same counts every second, and
        a third of a hundred-person room's senders are such slots."""
        if self.flush_batch is not None:
            self.flush_batch()
        if not self.started or not self.packets_sent:
            return None
        count = self._RTCRtpSender__packet_count
        before_last, last = self._counts_reported
        self._counts_reported = (last, count)
        if count == before_last:
            return None
        ntp = self._RTCRtpSender__ntp_timestamp
        report = sr_packet(self._ssrc, ntp, self._RTCRtpSender__rtp_timestamp, count,
                           self._RTCRtpSender__octet_count)
        # aiortc's round-trip estimate pairs the receivers' LSR with these two.
        self._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF
        self._RTCRtpSender__lsr_time = time.time()
        cname = self._RTCRtpSender__cname or ""
        if self._sdes is None or self._sdes[0] != cname:
            self._sdes = (cname, sdes_packet(self._ssrc, cname))
        return report, self._sdes[1]

    @property
    def started(self) -> bool:
        """Negotiated and connected. Asked once per forwarded packet, so once true it stays true (a
        transport that closes later drops packets in `RtpPath.send`)."""
        if self._live:
            return True
        self._live = self._writer is not None and self.transport._state is State.CONNECTED
        return self._live

    def write(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int, rtx: bool = False,
              ssrc: int | None = None, rid: str | None = None) -> bool:
        """Serializes the packet rewritten for this subscriber and sends it (the packet is not changed).

        `ssrc`/`rid` are for a simulcast publisher (bots) sending several streams on one m-line.
        """
        writer = self._writer
        if writer is None:
            return False
        path = self._path
        if path is None or path.transport is not self.transport:
            path = self._path = rtp_path(self.transport, self.send_mode)
        if not path.ready():
            return False
        n = 0
        # Sender reports count what went out on our media SSRC: not RTX's SSRC, not a bot's layer SSRCs.
        on_media_ssrc = ssrc is None and not (rtx and payload_type in self._rtx_pt)
        if path.compiled and not rtx and ssrc is None:
            found = writer.layout_of(packet)
            if found is not None:
                layout, level_word = found
                send_time = _shared.of(packet, time.time) if layout.with_time else None
                if not path.send_compiled(layout.constant, (packet.marker << 7) | payload_type, seq, timestamp,
                                          self._ssrc, send_time, level_word, layout.padding, packet.payload):
                    return False
                return self._sent(packet, seq, timestamp, layout.header.size + len(packet.payload), rtx, True)
        if path.inplace and not rtx and ssrc is None:
            n = writer.pack_into(path.view, packet, payload_type, seq, timestamp, self._ssrc,
                                 _shared.of(packet, time.time))
        if not n:
            if rtx and ssrc is None and payload_type in self._rtx_pt:
                data = self._rtx_bytes(packet, payload_type, seq, timestamp)
            else:
                data = writer.serialize(packet, payload_type, seq, timestamp, self._ssrc if ssrc is None else ssrc,
                                        abs_send_time(time.time()), rid)
            n = path.load(data)
        if not path.send(n):
            return False
        return self._sent(packet, seq, timestamp, n, rtx, on_media_ssrc)

    def batch_mode(self) -> bool:
        """This sender's connection uses the batched fan-out and the compiled module has it (else never ask again)."""
        return self.send_mode == "batch" and batch_built()

    def batch_source(self) -> BatchSource | None:
        """(path, header shapes, SSRC) when a batched fan-out may send for this sender now, else None."""
        writer, path = self._writer, self._path
        if writer is None or path is None or not self._has_report or path.transport is not self.transport:
            return None
        shapes = writer.batch_shapes()
        if shapes is None or not path.batchable():
            return None
        return path, shapes, self._ssrc

    def absorb(self, packets: int, octets: int, nbytes: int, last_sent: tuple[int, int, float] | None) -> None:
        """Counts what a batched fan-out sent for this sender (media SSRC packets: sender reports stay true)."""
        self._RTCRtpSender__packet_count += packets
        self._RTCRtpSender__octet_count += octets
        self.packets_sent += packets
        self.bytes_sent += nbytes
        if last_sent is not None:
            self.last_sent = last_sent

    def _sent(self, packet: RtpPacket, seq: int, timestamp: int, n: int, rtx: bool, on_media_ssrc: bool) -> bool:
        """Counts a packet sent (aiortc's sender reports read the private counters: payload octets, RFC 3550)."""
        if not self._has_report:
            # Until the publisher's first sender report arrives, map wall clock to this packet.
            self.set_sender_report(clock.current_ntp_time(), timestamp)
        if on_media_ssrc:
            self._RTCRtpSender__packet_count += 1
            self._RTCRtpSender__octet_count += len(packet.payload)
        self.packets_sent += 1
        self.bytes_sent += n
        if not rtx:
            self.last_sent = (seq, timestamp, time.monotonic())
        return True

    def _rtx_bytes(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> bytes:
        """A retransmission over RTX (RFC 4588): the original sequence number leads the payload."""
        rtx = RtpPacket(payload_type=self._rtx_pt[payload_type], marker=packet.marker,
                        sequence_number=self._rtx_seq, timestamp=timestamp, ssrc=self._rtx_ssrc,
                        payload=seq.to_bytes(2, "big") + packet.payload)
        rtx.extensions.mid = self.mid
        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        data: bytes = rtx.serialize(self._ext_map)
        return data

    def set_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """What aiortc's sender reports will say: publisher's NTP time ↔ our rewritten RTP time."""
        self._has_report = True
        self._RTCRtpSender__ntp_timestamp = ntp_timestamp
        self._RTCRtpSender__rtp_timestamp = rtp_timestamp

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        feedback = self.feedback
        if isinstance(packet, (RtcpRtpfbPacket, RtcpPsfbPacket)):
            self.feedback_ssrc = packet.media_ssrc
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if feedback is not None:
                feedback.on_nack(list(packet.lost))
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            if feedback is not None:
                feedback.on_keyframe_request()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb(packet.fci)  # ValueError only, never struct.error
            except ValueError:
                return
            if feedback is not None and self._ssrc in ssrcs:
                feedback.on_remb(bitrate)
        else:
            await super()._handle_rtcp_packet(packet)


# -- one RTCP report per connection --------------------------------------------------------------

# Compound RTCP packets stay under a typical path MTU after SRTP and UDP/IP overhead.
RTCP_BUDGET = 1100
# A sender report without report blocks (RFC 3550 6.4.1): header, SSRC, NTP, RTP time, packets, octets; packed
# here, once per sender and second, rather than through aiortc's packet objects (a hundred-person room has
# ~1,300 a second; `tests/sfu/test_rtcp_reports.py` compares the bytes with aiortc's).
_SR_HEADER = struct.Struct("!BBHIQIII")
_SR_WORDS = _SR_HEADER.size // 4 - 1
_RTCP_V2 = 2 << 6


def sr_packet(ssrc: int, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
    """A sender report of no report blocks; the counters wrap at 32 bits as RFC 3550 lets them."""
    return _SR_HEADER.pack(_RTCP_V2, RTCP_SR, _SR_WORDS, ssrc, ntp_timestamp, rtp_timestamp,
                           packets & 0xFFFFFFFF, octets & 0xFFFFFFFF)


def sdes_packet(ssrc: int, cname: str) -> bytes:
    """An SDES packet of one chunk, this SSRC's CNAME (RFC 3550 6.5), ended as aiortc ends it (two null octets,
    then padding to a word)."""
    value = cname.encode("utf8")[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(value)) + value + b"\x00\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return pack_rtcp_packet(RTCP_SDES, 1, chunk)


def send_connection_reports(transport: RTCDtlsTransport, senders: list[ForwardingSender],
                            receivers: list[ForwardingReceiver]) -> int:
    """Sends this connection's RTCP as few compound packets as fit the MTU: the SRs of the senders that sent
    since the report before last, else one RR with the blocks of all receivers, each followed by SDES. Returns
    packets sent.

    aiortc runs a timer per sender and per receiver; a subscriber of a 100-person room would have a
    hundred of them. One timer per connection does the same work with a fraction of the wakeups.
    """
    parts: list[tuple[bytes, bytes]] = []  # (report, its SDES packet)
    for sender in senders:
        pair = sender.sender_report()
        if pair is not None:
            parts.append(pair)
    blocks = [block for receiver in receivers for block in receiver.report_blocks()]
    rtcp_ssrc = next((r.rtcp_ssrc for r in receivers if r.rtcp_ssrc is not None), None)
    if not parts and blocks and rtcp_ssrc is not None:
        for start in range(0, len(blocks), 31):  # an RR holds at most 31 report blocks
            parts.append((bytes(RtcpRrPacket(ssrc=rtcp_ssrc, reports=blocks[start:start + 31])), b""))
    sent = 0
    compound = b""
    for report, sdes in parts:
        piece = report + sdes
        if compound and len(compound) + len(piece) > RTCP_BUDGET:
            sent += send_now(transport, compound, rtcp=True)
            compound = b""
        compound += piece
    if compound:
        sent += send_now(transport, compound, rtcp=True)
    return sent


def connection_transport(pc: RTCPeerConnection) -> RTCDtlsTransport | None:
    """The (bundled) DTLS transport of a connection's media, once there is one."""
    for transceiver in pc.getTransceivers():
        transport: RTCDtlsTransport = transceiver.sender.transport
        return transport
    return None


# -- peer connection ------------------------------------------------------------------------------


class MidRtpRouter(RtpRouter):
    """Routes by SSRC, else by the MID header extension (learning the SSRC), else as aiortc does.

    aiortc ignores the MID: with simulcast (no SSRCs in the SDP) and several video m-lines sharing
    payload types, its router cannot tell the streams apart and drops them.
    """

    def route_rtp(self, packet: RtpPacket) -> Any:
        receiver = self.ssrc_table.get(packet.ssrc)
        if receiver is not None:
            return receiver
        mid = packet.extensions.mid
        if mid is not None:
            receiver = self.mid_table.get(mid)
            if receiver is not None:
                self.ssrc_table[packet.ssrc] = receiver
                return receiver
        return super().route_rtp(packet)


# -- receiving inline -----------------------------------------------------------------------------
# aiortc hands every datagram from aioice's protocol to a queue, and one task per DTLS transport takes it off,
# unprotects, parses and routes it: a queue hand-over, a future and a task step per packet, a third of what a
# received packet cost the server (#14). Once a transport is connected, its SRTP and SRTCP datagrams are handled
# where they arrive, in the host socket's `datagram_received` (`InlineStunProtocol`); DTLS records, STUN and
# everything before the handshake ends still take aiortc's way. TURN-relayed datagrams also take aiortc's way.

# inline: steady streams take the compiled receive route (ReceiveRoute), and a socket that carries one is read in C
# (SocketDrain): a wake-up's datagrams of open routes never enter Python; route: the route entered once per datagram
# from Python (before the drain); python: inline without the compiled route, a burst's queued datagrams read in the
# same wake-up (`InlineStunProtocol`); single: python, one datagram per wake-up; queue: aiortc's. The others are
# kept for benchmarks.
RECEIVE_MODES = ("inline", "route", "python", "single", "queue")
RECEIVE_PATH_ENV = "CONVENE_RECEIVE_PATH"


_receive_path = PathMode("receive", RECEIVE_PATH_ENV, RECEIVE_MODES, "inline")


def set_receive_mode(mode: str) -> None:
    """Process-wide; transports that connect afterwards use it (tests compare the paths). CONVENE_RECEIVE_PATH=queue
    keeps aiortc's queue (benchmarks compare the two in one run)."""
    _receive_path.set(mode)


class ReceiveRoute:
    """One incoming stream's compiled route (convene_receive in sfu/_fastpath.c): unprotect, parse,
    receive statistics, the packet ring and the batched fan-out in one C call per packet.

    It is armed (in its receiver's `routes` and its transport's `InlineReceive.routes`) once Python has handled a
    packet of the stream and its publication says nothing about the stream needs Python (`routable`). While armed,
    it holds the stream's statistics and NACK window top: the receiver takes them back (`pull`) before it handles
    any packet itself and hands them back (`push`) after. A packet the route does not take (out of order, RTX,
    another payload type, padding) goes the Python way as plaintext. It disarms itself at the first packet its
    publication no longer allows, and Python handles the stream until a packet arms it again.
    """

    __slots__ = ("receiver", "target", "inline", "ssrc", "key", "fanout", "ring", "layer", "c", "one_by_one", "steady",
                 "_seen", "_stats", "_nack", "_call")

    def __init__(self, receiver: ForwardingReceiver, target: RouteTarget, inline: "InlineReceive", ssrc: int,
                 payload_type: int, clock_rate: int, spec: tuple[Any, Any, int]) -> None:
        compiled = compiled_send()
        assert compiled is not None
        c_ffi, c_lib, protect = compiled
        self.receiver = receiver
        self.target = target
        self.inline = inline
        self.ssrc = ssrc
        self.key = ssrc.to_bytes(4, "big")  # the SSRC as it stands in the (unencrypted) RTP header
        self.fanout, cache, self.layer = spec
        # Video: NACKs are answered from the ring the route fills. Audio is never resent: no ring.
        self.ring = cache.compile(c_ffi, c_lib) if cache is not None else None
        self.c = c_ffi.new("struct convene_route *")
        self.c.ssrc, self.c.pt, self.c.clock_rate = ssrc, payload_type, clock_rate
        self.c.ring = self.ring.ring if self.ring is not None else c_ffi.NULL
        # The level element is copied to subscribers as Python's fan-out copies it, and counted for speakers.
        self.c.level_id = inline.audio_level_id()
        nacks = receiver._nacks
        self._stats = receiver._streams[ssrc]
        self._nack = nacks[ssrc] if nacks is not None else None  # audio has no NACK window
        self._seen = (0, 0, 0, 0, 0)
        self.one_by_one: tuple[Any, ...] = ()  # the target's, as it was when the drain last opened the route
        self.steady = target.steady
        if self.steady:  # open for good: nothing about it changes between drain calls
            self.c.open, self.c.members = 1, len(self.fanout.members)
            self.c.entries, self.c.status = self.fanout.entries, self.fanout._status
        self._call = (c_lib.convene_receive, inline.unprotect, inline.rx_ctx, inline.rx_buf, inline.plain_len,
                      self.c, protect, inline.others, inline.send_time)

    @classmethod
    def arm(cls, receiver: ForwardingReceiver, packet: RtpPacket) -> None:
        """Arms a route for the media stream `packet` came on, if everything allows it."""
        target = receiver.route_target
        ssrc = packet.ssrc
        nacks = receiver._nacks
        stats = receiver._streams.get(ssrc)
        if (target is None or ssrc in receiver._rtx_ssrc or stats is None or stats.max_seq is None
                or stats._last_arrival is None or not route_built()
                or (nacks is not None and (ssrc not in nacks or nacks[ssrc].max_seq != stats.max_seq))):
            return
        inline = getattr(getattr(receiver.transport.transport, "_connection", None), "inline", None)
        if (not isinstance(inline, InlineReceive) or not inline.routed or not inline.started or inline.tap is not None
                or inline.unprotect is None):
            return
        spec = target.route_for(ssrc)
        codec = receiver._codecs.get(packet.payload_type)
        if spec is None or codec is None:
            return
        route = cls(receiver, target, inline, ssrc, packet.payload_type, codec.clockRate, spec)
        stale = inline.routes.get(route.key)
        if stale is not None:
            stale.disarm()
        sink = target.sink
        if sink is not None:
            route.c.log = inline.record_log(ssrc, sink)
        route.push()
        receiver.routes[ssrc] = route
        inline.routes[route.key] = route
        inline.routes_changed()
        target.routed(ssrc, route.pull)

    def disarm(self) -> None:
        """Python handles the stream from now on (its statistics taken back first)."""
        self.pull()
        if self.receiver.routes.get(self.ssrc) is self:
            del self.receiver.routes[self.ssrc]
        if self.inline.routes.get(self.key) is self:
            del self.inline.routes[self.key]
            self.inline.sinks.pop(self.ssrc, None)
            self.inline.routes_changed()
        self.target.routed(self.ssrc, None)

    def push(self) -> None:
        """The receiver's statistics (aiortc's StreamStatistics, the NACK window's top) into the route."""
        stats, c = self._stats, self.c
        c.max_seq, c.cycles, c.received = stats.max_seq, stats.cycles, stats.packets_received
        c.jitter_q4, c.last_arrival, c.last_timestamp = stats._jitter_q4, stats._last_arrival, stats._last_timestamp

    def pull(self) -> None:
        """The route's statistics back into the receiver's, and what it handled into the counters."""
        stats, c, nack = self._stats, self.c, self._nack
        stats.max_seq, stats.cycles, stats.packets_received = c.max_seq, c.cycles, c.received
        stats._jitter_q4, stats._last_arrival, stats._last_timestamp = c.jitter_q4, c.last_arrival, c.last_timestamp
        if nack is not None and nack.max_seq != c.max_seq:
            nack.max_seq = c.max_seq
            if nack.missing:
                nack.truncate()  # the window moved on: numbers below it are no longer asked for
        now = (int(c.packets), int(c.octets), int(c.heard), int(c.voiced), int(c.loudness))
        if now[0] != self._seen[0]:
            packets, octets, heard, voiced, loudness = (a - b for a, b in zip(now, self._seen))
            self._seen = now
            self.receiver.packets += packets
            self.target.absorb_routed(self.layer, packets, octets, (heard, voiced, loudness), float(c.voiced_at))

    def open(self) -> None:
        """Before each drain call (SocketDrain): may C handle this stream's packets on its own until it returns?
        The checks `receive` makes per datagram; no Python runs between the datagrams of one call."""
        target, c = self.target, self.c
        if self.receiver.route_target is not target or not target.routable():
            self.disarm()
            return
        fanout = self.fanout
        if fanout.backlogged():
            c.open = 0  # Python keeps that socket's order: the datagrams come back raw, `receive` declines them
            return
        self.one_by_one = one_by_one = target.one_by_one(self.layer)
        c.open, c.after, c.members, c.entries, c.status = 1, 1 if one_by_one else 0, len(fanout.members), \
            fanout.entries, fanout._status
        c.gate = target.gate()

    def receive(self, data: bytes) -> bytes | None:
        """Hot path. b"": handled here (or dropped: not authentic); plaintext: Python goes on with it; None: not
        touched (Python unprotects it)."""
        target = self.target
        if self.receiver.route_target is not target or not target.routable():
            self.disarm()
            return None
        fanout = self.fanout
        if fanout.backlogged():
            return None  # a subscriber's socket holds a backlog: Python keeps that socket's order
        receive, unprotect, ctx, buf, plain_len, c, protect, others, send_time = self._call
        members = len(fanout.members)
        one_by_one = target.one_by_one(self.layer)  # read first: a member the batch hands back is forwarded in _after
        c.gate = target.gate()
        result = receive(unprotect, ctx, data, len(data), buf, plain_len, c, protect, fanout.entries, members,
                         fanout._status, others, send_time)
        if self.inline.sinks:
            self.inline.flush_records()
        if result == 0:
            if others[0] or one_by_one:
                self._after(members, one_by_one)
            return b""
        if result == 1:
            return self.inline.plaintext()
        return None if result == 2 else b""

    def _after(self, members: int, one_by_one: tuple[Any, ...]) -> None:
        """Python forwards the packet to whom C did not serve: members it could not send to, and receivers outside
        the batch (as Publication.on_rtp does after its fan-out)."""
        inline = self.inline
        packet = inline.parse(inline.plaintext())
        _shared.share(packet, compiled_buffer(inline.send_time, 3))  # one abs-send-time for all its copies
        keyframe = self.target.keyframe(packet)
        if self.inline.others[0]:
            self.fanout.settle(packet, keyframe, self.layer, members)
        for subscription in one_by_one:
            subscription.forward(packet, keyframe, self.layer)


class InlineReceive:
    """One connected DTLS transport's SRTP/SRTCP receive, called from its host sockets' protocol.

    It starts only once aioice's queue is empty, so packets queued before the handshake ended are not overtaken;
    from then on no SRTP datagram of this transport enters the queue. RTP is handled synchronously (our receivers'
    `handle_rtp`); RTCP is unprotected and handled here too, its coroutines run eagerly (sfu/eager.py).
    """

    __slots__ = ("transport", "started", "bursts", "routed", "drains", "queued_reads", "tap", "routes", "c_routes",
                 "drained", "checked", "sinks", "log", "records_lost", "unprotect", "rx_ctx", "rx_buf", "plain_len",
                 "others", "send_time", "_srtp", "_extensions", "_ids", "_router", "_queue", "_records")

    def __init__(self, transport: RTCDtlsTransport, queue: asyncio.Queue[Any]) -> None:
        self.transport = transport
        self.started = False
        mode = _receive_path.value
        self.bursts = mode in ("inline", "route", "python")  # "single": one datagram per wake-up
        self.routed = mode in ("inline", "route")  # steady streams may take the compiled route
        self.drains = mode == "inline"  # and its sockets are read in C (SocketDrain)
        self.queued_reads = 0  # datagrams read in the wake-up of an earlier one (tests)
        self.tap = _taps.get(transport)  # tests: every plaintext RTP packet (tap_plaintext_rtp)
        self._srtp = transport._rx_srtp
        self._extensions = transport._rtp_header_extensions_map
        self._ids = extension_ids(self._extensions)
        self._router = transport._rtp_router
        self._queue = queue
        # Compiled receive routes by the SSRC's 4 header bytes (ReceiveRoute), and what their C call needs: the
        # transport's own receive session (one per transport: the route unprotects with it, never a copy).
        self.routes: dict[bytes, ReceiveRoute] = {}
        self.c_routes: Any = None  # the first CONVENE_ROUTES of them for the drain, in `drained`'s order
        self.drained: list[ReceiveRoute] = []
        self.checked: list[ReceiveRoute] = []  # the drained routes that are not steady: opened before each call
        # A counting client's routes (ReceiveRoute.sink): their packets' records, by SSRC, and the one log C fills.
        self.sinks: dict[int, RecordSink] = {}
        self.log: Any = None
        self.records_lost = 0
        self._records: Any = None
        self.unprotect: Any = None
        self.rx_ctx: Any = None
        self.rx_buf: Any = None
        self.plain_len: Any = None
        self.others: Any = None
        self.send_time: Any = None
        compiled = compiled_send()
        if compiled is not None and self._srtp is not None:
            from pylibsrtp._binding import ffi, lib

            c_ffi = compiled[0]
            self.unprotect = c_ffi.cast("void *", int(ffi.cast("intptr_t", ffi.addressof(lib, "srtp_unprotect"))))
            self.rx_ctx = c_ffi.cast("void *", int(ffi.cast("intptr_t", self._srtp._srtp[0])))
            self.rx_buf = c_ffi.new("unsigned char[]", BUFFER_SIZE + 512)
            self.plain_len = c_ffi.new("int *")
            self.others = c_ffi.new("int *")
            self.send_time = c_ffi.new("char[3]")
            if self.drains and drain_built():
                self.c_routes = c_ffi.new("struct convene_routes *")

    def routes_changed(self) -> None:
        """A route armed or disarmed: the drain's table follows, and a first route starts the drain."""
        table = self.c_routes
        if table is None:
            return
        self.drained = list(self.routes.values())[:DRAIN_ROUTES]
        self.checked = [route for route in self.drained if not route.steady]
        for i, route in enumerate(self.drained):
            table.ssrc[i], table.route[i] = route.ssrc, route.c
        table.n = len(self.drained)
        if self.drained:
            connection = getattr(self.transport.transport, "_connection", None)
            for protocol in getattr(connection, "_protocols", ()):
                if isinstance(protocol, InlineStunProtocol):
                    protocol.drain()

    def open_routes(self) -> None:
        for route in tuple(self.checked):  # open() may disarm
            route.open()

    def record_log(self, ssrc: int, sink: RecordSink) -> Any:
        """The log this transport's routes write their records in (one per transport), `sink` taking ssrc's."""
        if self.log is None:
            c_ffi = compiled_send()[0]  # type: ignore[index]
            if c_ffi.sizeof("struct convene_record") != RECORD.size:
                raise RuntimeError("sfu/_fastpath.c's convene_record is not RECORD's layout")
            self.log = c_ffi.new("struct convene_log *")
            self._records = c_ffi.buffer(self.log.records)
        self.sinks[ssrc] = sink
        return self.log

    def flush_records(self) -> None:
        """Hands the logged records to their sinks, in arrival order. Called after every C call that may log, so
        a record is handled before any packet Python handles after it (the log holds more than a call reads)."""
        records = self.log
        n = records.n
        if records.lost != self.records_lost:
            lost = int(records.lost)
            log.warning("%d packet records found the log full", lost - self.records_lost)
            self.records_lost = lost
        if not n:
            return
        data = self._records[: n * RECORD.size]
        records.n = 0
        sinks = self.sinks
        for arrival, ssrc, seq, ts, marker, size, tail in RECORD.iter_unpack(data):
            sink = sinks.get(ssrc)
            if sink is not None:
                sink(seq, ts, size, tail, marker, arrival)

    def plaintext(self) -> bytes:
        """The packet a route unprotected last (rx_buf)."""
        return compiled_buffer(self.rx_buf, self.plain_len[0])

    def audio_level_id(self) -> int:
        """The negotiated audio-level extension id now (0: none); the map is configured in place."""
        return self._ids.audio_level or 0

    def parse(self, plain: bytes) -> RtpPacket:
        return parse_forwarded(plain, self._ids) or RtpPacket.parse(plain, self._extensions)

    def __call__(self, data: bytes) -> bool:
        """Handles one SRTP or SRTCP datagram; False: not yet (aiortc's queue still holds packets)."""
        if not self.started:
            if not self._queue.empty():
                return False
            self.started = True
        transport = self.transport
        transport._RTCDtlsTransport__rx_bytes += len(data)  # aiortc's transport statistics stay true
        transport._RTCDtlsTransport__rx_packets += 1
        try:
            if is_rtcp(data):  # aiortc's own demultiplexing (RFC 5761), as its receive loop does
                # now, not in a task: aiortc's handlers never suspend, and a task per packet cost as much (sfu/eager)
                start_eagerly(transport._handle_rtcp_data(self._srtp.unprotect_rtcp(data)))
                return True
            route = self.routes.get(data[8:12]) if self.routes else None
            plain = route.receive(data) if route is not None else None
            if plain is None:
                plain = self._srtp.unprotect(data)
            if plain:
                self._rtp(plain)
        except (pylibsrtp.Error, ValueError):
            pass  # not authentic, replayed or malformed: dropped, as aiortc drops it
        except Exception:  # noqa: BLE001 - a fault of ours on one packet must not end the socket's reading
            log.exception("inline receive failed on one packet")
        return True

    def _rtp(self, plain: bytes) -> None:
        if self.tap is not None:
            self.tap(plain)
        packet = self.parse(plain)
        receiver = self._router.route_rtp(packet)
        if receiver is None:
            return
        handle = getattr(receiver, "handle_rtp", None)
        if handle is not None:
            handle(packet)
        else:  # not one of ours (a plain aiortc receiver): its coroutine, as aiortc runs it
            asyncio.ensure_future(receiver._handle_rtp_packet(packet, arrival_time_ms=clock.current_ms()))


# A video frame arrives as a burst of full-size packets, all but the last with the RTP marker bit clear. asyncio
# reads one datagram per wake-up of its loop (an epoll round and a loop iteration each); reading the rest of the
# burst from the socket at once costs a failed read at the burst's end instead. In a loopback measurement with
# 1 ms between bursts that cut the CPU per datagram from 34 to 18 µs for bursts of 3 and from 20 to 7 µs for
# bursts of 8; a lone datagram cost 14 µs more, so only a packet that says more of its frame follows (marker
# clear, full-size: not audio, not RTCP, whose second byte always has that bit set) leads to a read.
BURST_FOLLOWS_SIZE = 500
BURST_MAX = 16  # datagrams per wake-up of one socket, so that a flood on one socket cannot starve the others


class InlineStunProtocol(aioice.ice.StunProtocol):
    """aioice's protocol for a host socket: SRTP datagrams of a connected transport go to its `InlineReceive`,
    and the datagrams already queued behind one that is mid-frame are read in the same wake-up."""

    _sock: socket.socket | None = None
    _drain: "SocketDrain | None" = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # asyncio's selector transport (`_read_ready`); another loop's (uvloop) reads one datagram per wake-up
        if isinstance(transport, asyncio.selector_events._SelectorDatagramTransport):
            self._sock = transport._sock

    def drain(self) -> None:
        """From now on the socket is read in C (SocketDrain), once its connection has a receive route."""
        if self._drain is None and self._sock is not None and not self.transport._conn_lost:
            self._drain = SocketDrain(self)

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        for _ in range(BURST_MAX):
            inline = self._one(data, addr)
            if inline is None:
                return
            queued = self._queued()
            if queued is None:
                return
            inline.queued_reads += 1
            data, addr = queued

    def _one(self, data: bytes | str, addr: tuple[Any, ...]) -> InlineReceive | None:
        """Handles one datagram; its connection's inline receive when more of its burst is probably queued."""
        if not data or not isinstance(data, bytes):
            return None  # an empty datagram would end aiortc's receive loop (it reads data[0]): the connection dies
        inline = self.receiver.inline
        if inline is not None and 127 < data[0] < 192 and inline(data):
            more = inline.bursts and len(data) > BURST_FOLLOWS_SIZE and not data[1] & 0x80
            return inline if more else None
        super().datagram_received(data, addr)
        return None

    def _queued(self) -> tuple[bytes, tuple[Any, ...]] | None:
        """The socket's next datagram if one is queued, read as asyncio's own `_read_ready` reads it."""
        transport: Any = self.transport
        if self._sock is None or transport._conn_lost:  # closed meanwhile (a handler ended the connection)
            return None
        try:
            data, addr = self._sock.recvfrom(transport.max_size)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            self.error_received(exc)
            return None
        return data, addr


# The drain's results (convene_drain in sfu/_fastpath.c)
DRAIN_EMPTY, DRAIN_RAW, DRAIN_AFTER, DRAIN_PLAIN, DRAIN_SPENT, DRAIN_ERROR = range(6)
DRAIN_ROUTES = 64  # CONVENE_ROUTES: a connection's routes in the drain's table (more take the per-datagram route)
DRAIN_DATAGRAM = 65536  # CONVENE_DATAGRAM
DRAIN_BUDGET = 32  # datagrams per wake-up of one socket, so that a flood on one cannot starve the others


def drain_built() -> bool:
    compiled = compiled_send()
    return compiled is not None and hasattr(compiled[1], "convene_drain")


# One datagram buffer per event loop, shared by its drains: 64 KiB per socket was ~190 KiB per participant (#14).
# Sharing is safe because reader callbacks never nest and a datagram's bytes are dead when convene_drain returns
# (a route copies them into its transport's rx_buf; a raw one is copied out before Python handles it).
_drain_buffers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()


def drain_buffer(ffi: Any) -> Any:
    loop = asyncio.get_running_loop()
    raw = _drain_buffers.get(loop)
    if raw is None:
        raw = _drain_buffers[loop] = ffi.new("unsigned char[]", DRAIN_DATAGRAM)
    return raw


def sender_address(family: int, raw: bytes) -> tuple[Any, ...]:
    """A sockaddr's bytes as the tuple Python's socket module gives for it (recvfrom's address)."""
    port = int.from_bytes(raw[2:4], "big")
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
    flowinfo = int.from_bytes(raw[4:8], "big")
    scope = int.from_bytes(raw[24:28], sys.byteorder)
    if scope:
        try:
            host = f"{host}%{socket.if_indextoname(scope)}"
        except OSError:
            host = f"{host}%{scope}"
    return host, port, flowinfo, scope


class SocketDrain:
    """Reads one host socket in C (convene_drain) in place of asyncio's `_read_ready`, one datagram per call.

    A wake-up's datagrams of open receive routes are handled in C to the end; the first one that needs Python (a
    STUN or DTLS datagram, RTCP, a stream without an open route, a packet out of order, a receiver outside the
    batch) comes back and is handled as the per-datagram path handles it, and the drain goes on. Before each call
    Python opens the routes whose publication allows it (ReceiveRoute.open), as the per-datagram path checks
    each datagram. While the connection has no route (or no inline receive) asyncio's own read serves.
    """

    __slots__ = ("protocol", "transport", "c", "_inline", "_raw", "_drain", "_ffi")

    def __init__(self, protocol: InlineStunProtocol) -> None:
        compiled = compiled_send()
        assert compiled is not None and protocol._sock is not None
        self._ffi, lib, protect = compiled
        self._drain = lib.convene_drain
        self.protocol = protocol
        self.transport: Any = protocol.transport
        self._raw = drain_buffer(self._ffi)
        self.c = self._ffi.new("struct convene_drain *")
        self.c.fd = protocol._sock.fileno()
        self.c.raw = self._raw
        self.c.protect = protect
        self._inline: InlineReceive | None = None
        loop: Any = asyncio.get_running_loop()
        loop._add_reader(self.c.fd, self._ready)  # replaces the transport's reader; its close() removes ours

    def _attach(self, inline: InlineReceive) -> None:
        c = self.c
        c.unprotect, c.ctx, c.buf, c.plain_len = inline.unprotect, inline.rx_ctx, inline.rx_buf, inline.plain_len
        c.others, c.send_time, c.routes = inline.others, inline.send_time, inline.c_routes
        self._inline = inline

    def _ready(self) -> None:
        """The socket is readable (the event loop's reader callback)."""
        transport = self.transport
        if transport._conn_lost:
            return
        inline = self.protocol.receiver.inline
        if inline is None or not inline.drained or inline.c_routes is None:
            transport._read_ready()  # asyncio's own: one datagram, a burst's rest in datagram_received
            return
        if inline is not self._inline:
            self._attach(inline)
        c = self.c
        c.budget = DRAIN_BUDGET
        reads = c.reads
        while True:
            inline.open_routes()
            result = self._drain(c)
            if inline.sinks:
                inline.flush_records()
            if c.rx_packets:
                self._count(inline)
            if result == DRAIN_EMPTY or result == DRAIN_SPENT:
                break
            try:
                self._python(inline, result)
            except Exception:  # noqa: BLE001 - a fault of ours on one datagram must not end the socket's reading
                log.exception("drained datagram failed")
            if result == DRAIN_ERROR or transport._conn_lost or self.protocol.receiver.inline is not inline:
                break
        inline.queued_reads += max(0, c.reads - reads - 1)

    def _count(self, inline: InlineReceive) -> None:
        """aiortc's transport statistics count what C consumed (the rest is counted where Python handles it)."""
        c, transport = self.c, inline.transport
        transport._RTCDtlsTransport__rx_bytes += int(c.rx_bytes)
        transport._RTCDtlsTransport__rx_packets += int(c.rx_packets)
        c.rx_bytes = c.rx_packets = 0

    def _python(self, inline: InlineReceive, result: int) -> None:
        """The datagram C handed back, handled as the per-datagram path handles it."""
        c = self.c
        if result == DRAIN_RAW:
            data = bytes(self._ffi.buffer(self._raw, c.raw_len))
            family = int.from_bytes(bytes(self._ffi.buffer(c.addr, 2)), sys.byteorder)
            self.protocol._one(data, sender_address(family, bytes(self._ffi.buffer(c.addr, c.addrlen))))
        elif result == DRAIN_AFTER:
            route = inline.drained[c.index]
            route._after(int(route.c.members), route.one_by_one)
        elif result == DRAIN_PLAIN:
            inline._rtp(inline.plaintext())
        elif result == DRAIN_ERROR:
            self.protocol.error_received(OSError(c.error, os.strerror(c.error)))


def _inline_on_connect(transport: RTCDtlsTransport) -> None:
    """Arms the inline path when the transport connects, disarms it when it ends."""
    connection = getattr(transport.transport, "_connection", None)
    if not isinstance(connection, GatheringConnection):
        return
    if transport._state is State.CONNECTED and transport._rx_srtp is not None and _receive_path.value != "queue":
        connection.inline = InlineReceive(transport, connection._queue)
    elif transport._state in (State.CLOSED, State.FAILED):
        connection.inline = None


_inline_watched: "weakref.WeakSet[RTCDtlsTransport]" = weakref.WeakSet()


def watch_for_inline_receive(transport: RTCDtlsTransport) -> None:
    if transport not in _inline_watched:
        _inline_watched.add(transport)
        transport.on("statechange", lambda: _inline_on_connect(transport))


class ReportClock:
    """One RTCP timer for every forwarding connection of an event loop.

    aiortc runs a timer per sender and per receiver; one per connection was already a fraction of that, but each
    tick still woke an idle server with cold caches (~0.3 ms of CPU a wakeup on the test machine, #14), so a
    subscriber cost more in timer wakeups than in forwarded packets. One tick sends every connection's reports in
    a row, at RFC 3550's randomised interval ([0.5, 1.5] of the nominal one); the task ends when no connection
    is left, so an empty server has no timer.
    """

    interval = 1.0

    def __init__(self) -> None:
        self.connections: dict[ForwardingPeerConnection, None] = {}  # ordered: reports go out in joining order
        self._task: asyncio.Task[None] | None = None

    def add(self, pc: "ForwardingPeerConnection") -> None:
        self.connections[pc] = None
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, pc: "ForwardingPeerConnection") -> None:
        self.connections.pop(pc, None)

    async def _run(self) -> None:
        while self.connections:
            await asyncio.sleep(self.interval * (0.5 + random.random()))
            for pc in list(self.connections):
                try:
                    pc.send_reports()
                except Exception:  # noqa: BLE001 - one connection's fault must not stop the others' reports
                    log.exception("RTCP reports failed for one connection")
        self._task = None


_report_clocks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReportClock]" = weakref.WeakKeyDictionary()


def report_clock() -> ReportClock:
    """The running loop's clock (tests run a loop each)."""
    loop = asyncio.get_running_loop()
    clock = _report_clocks.get(loop)
    if clock is None:
        clock = _report_clocks[loop] = ReportClock()
    return clock


class ForwardingPeerConnection(RTCPeerConnection):
    """An RTCPeerConnection whose transceivers forward packets instead of decoding/encoding, and
    which sends its RTCP reports from one timer for all connections (`ReportClock`) instead of one per sender
    and receiver."""

    _reports: ReportClock | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.send_mode = _send_path.value
        # Every transceiver's sender and receiver, in order: aiortc never drops a transceiver, so the report clock
        # reads these instead of sorting a hundred transceivers out again at every tick.
        self._senders: list[ForwardingSender] = []
        self._receivers: list[ForwardingReceiver] = []

    def send_reports(self) -> int:
        """This connection's sender and receiver reports now (compound packets), and its receivers' one repeat of
        the NACKs still open (`renack`); returns report packets sent."""
        transport = connection_transport(self)
        if transport is None:
            return 0
        # Only slots that carried something have a report to give: a subscriber's receivers never receive (each is
        # the other half of a send-only slot), and a seat nobody was chosen for has never sent.
        receivers = [r for r in self._receivers if r.received]
        senders = [s for s in self._senders if s.packets_sent or s.flush_batch is not None]
        for receiver in receivers:
            receiver.renack()
        return send_connection_reports(transport, senders, receivers)

    async def close(self) -> None:
        if self._reports is not None:
            self._reports.discard(self)
            self._reports = None
        await super().close()

    async def createOffer(self) -> RTCSessionDescription:  # noqa: N802 - aiortc's name
        return await _keeping_own_description(super().createOffer())

    async def createAnswer(self) -> RTCSessionDescription:  # noqa: N802 - aiortc's name
        return await _keeping_own_description(super().createAnswer())

    def _RTCPeerConnection__createTransceiver(
        self, direction: str, kind: str, sender_track: Any = None
    ) -> RTCRtpTransceiver:
        global _forwarding_parts
        _forwarding_parts = True  # aiortc builds our sender and receiver at once (`_make_sender`, `_make_receiver`)
        try:
            transceiver = RTCPeerConnection._RTCPeerConnection__createTransceiver(self, direction, kind, sender_track)
        finally:
            _forwarding_parts = False
        transport = transceiver.receiver.transport
        if type(transport._rtp_router) is RtpRouter:
            transport._rtp_router.__class__ = MidRtpRouter
        watch_for_inline_receive(transport)
        # aiortc built ours (`_make_sender`, `_make_receiver`), gave the sender the connection's stream id and the
        # receiver the sender's SSRC for its RTCP.
        sender, receiver = transceiver.sender, transceiver.receiver
        assert isinstance(sender, ForwardingSender) and isinstance(receiver, ForwardingReceiver)
        sender.send_mode = self.send_mode
        self._senders.append(sender)
        self._receivers.append(receiver)
        if self._reports is None:
            self._reports = report_clock()
            self._reports.add(self)
        assert isinstance(transceiver, RTCRtpTransceiver)
        return transceiver


def sender_of(transceiver: RTCRtpTransceiver) -> ForwardingSender:
    sender = transceiver.sender
    assert isinstance(sender, ForwardingSender), "transceiver not built by ForwardingPeerConnection"
    return sender


def receiver_of(transceiver: RTCRtpTransceiver) -> ForwardingReceiver:
    receiver = transceiver.receiver
    assert isinstance(receiver, ForwardingReceiver), "transceiver not built by ForwardingPeerConnection"
    return receiver


def prefer_opus_dtx_and_fec(transceiver: RTCRtpTransceiver) -> None:
    """Asks the sender for Opus DTX (silence costs ~nothing) and in-band FEC, in our answer's fmtp."""
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters["usedtx"] = 1
            codec.parameters["useinbandfec"] = 1


def enable_simulcast_extensions() -> None:
    """Lets video m-lines negotiate the RID header extensions simulcast needs. Process-wide."""
    video = HEADER_EXTENSIONS["video"]
    for uri in (RID_URI, REPAIRED_RID_URI):
        if not any(ext.uri == uri for ext in video):
            video.append(RTCRtpHeaderExtensionParameters(id=max(e.id for e in video) + 1, uri=uri))


def transceiver_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    """The codecs negotiated for a transceiver (aiortc keeps them in a private attribute)."""
    codecs: list[Any] = transceiver._codecs
    return codecs


def offer_payload_type(kind: str, mime_type: str) -> int | None:
    """The payload type aiortc offers for a codec: as offerer, our PTs are the ones the answer uses."""
    for codec in CODECS[kind]:
        if codec.mimeType.lower() == mime_type.lower() and codec.payloadType is not None:
            return int(codec.payloadType)
    return None


@dataclass(frozen=True)
class MediaLine:
    mid: str
    kind: str
    direction: str


def parse_media_lines(text: str) -> list[MediaLine]:
    """Parses an SDP without touching any connection; raises ValueError when it is not usable."""
    try:
        description = parse_by_sections(text)
    except Exception as exc:  # aiortc's parser raises many types on garbage
        raise ValueError(f"SDP does not parse: {exc}") from exc
    lines = []
    for media in description.media:
        if media.kind not in ("audio", "video", "application"):
            raise ValueError(f"unsupported media kind {media.kind!r}")
        if not media.rtp.muxId:
            raise ValueError("every m-line needs an a=mid")
        if media.ice is None or not media.ice.usernameFragment or not media.dtls or not media.dtls.fingerprints:
            raise ValueError("m-line lacks ICE credentials or a DTLS fingerprint")
        lines.append(MediaLine(mid=media.rtp.muxId, kind=media.kind, direction=media.direction or "sendrecv"))
    if not lines:
        raise ValueError("SDP has no m-lines")
    mids = [line.mid for line in lines]
    if len(set(mids)) != len(mids):
        raise ValueError("two m-lines have the same a=mid")
    for group in description.group:
        # aiortc bundles onto the transport of the group's first mid: one naming no m-line leaves the
        # connection without a transport (AttributeError in createAnswer, and again in close()).
        if group.semantic == "BUNDLE" and not set(group.items) <= set(mids):
            raise ValueError("a=group:BUNDLE names a mid no m-line has")
    # Only read here: aiortc's set*Description takes this parse of the same text instead of parsing again.
    _hand_over(text, description)
    return lines


# -- ICE ------------------------------------------------------------------------------------------
# aioice 0.13 binds one UDP socket per host address on port 0, names each host candidate by the address it
# bound, leaves 127.0.0.1 out, and aiortc hands it one TURN URL only (the first of all its ICE servers).
# A server behind 1:1 NAT, behind a firewall that opens a port range, or an aiortc client that must try
# TURN over UDP, TCP and TLS needs more. `install_ice_gathering` does it process-wide, at three seams:
# `aioice.ice.get_host_addresses` (which addresses gather), `aiortc.rtcicetransport.Connection` (our
# subclass: ports in a range, announced address, a relay per TURN URL) and
# `aiortc.rtcicetransport.connection_kwargs` (every TURN URL, not just the first).

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class IceGathering:
    """How this process's peer connections gather host candidates."""

    include_loopback: bool = True  # gather on 127.0.0.1 too (aioice leaves it out)
    networks: tuple[IpNetwork, ...] = ()  # only addresses inside these; empty: every address
    announce_ip: IpAddress | None = None  # host candidates name this address instead (1:1 NAT)
    port_range: tuple[int, int] | None = None  # host sockets bind a port in [first, last]; None: any


@dataclass(frozen=True)
class TurnServer:
    """One TURN URL with its credentials, in the form aioice's Connection takes it."""

    address: tuple[str, int]
    username: str | None
    password: str | None
    ssl: bool
    transport: str


_gathering = IceGathering()
_aioice_host_addresses = aioice.ice.get_host_addresses
_aiortc_connection_kwargs = aiortc.rtcicetransport.connection_kwargs
# aioice 0.13.0's Connection.get_component_candidates, which GatheringConnection calls with no host address
# (so that it gathers only its TURN server's relay): a change upstream must be read before the check passes.
AIOICE_COMPONENT_CANDIDATES_SHA256 = "118597a9fcb703f9"


def install_ice_gathering(settings: IceGathering) -> None:
    """Process-wide (aioice has no per-connection hook for any of it); the last call wins."""
    global _gathering
    _gathering = settings
    aioice.ice.get_host_addresses = _host_addresses
    aiortc.rtcicetransport.Connection = GatheringConnection
    aiortc.rtcicetransport.connection_kwargs = _connection_kwargs


def ice_gathering() -> IceGathering:
    return _gathering


# aioice lists the host's interfaces at every gathering, two per join (~0.2 ms each: netlink and ifaddr); a list
# this recent is used again, so an address that comes up is gathered by connections made from then at most this
# much later.
HOST_ADDRESSES_SECONDS = 5.0
_listed: dict[tuple[bool, bool], tuple[float, list[str]]] = {}


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    now = time.monotonic()
    listed = _listed.get((use_ipv4, use_ipv6))
    if listed is None or now - listed[0] > HOST_ADDRESSES_SECONDS:
        listed = _listed[(use_ipv4, use_ipv6)] = (now, list(_aioice_host_addresses(use_ipv4, use_ipv6)))
    addresses = list(listed[1])
    if _gathering.include_loopback and use_ipv4 and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    if _gathering.networks:
        addresses = [a for a in addresses if any(ipaddress.ip_address(a) in n for n in _gathering.networks)]
    return addresses


def _connection_kwargs(servers: list[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = _aiortc_connection_kwargs(servers)
    every = turn_servers(servers)
    if len(every) > 1:
        kwargs["more_turn_servers"] = every[1:]  # aiortc's own kwargs already name every[0]
    return kwargs


def turn_servers(servers: list[Any]) -> list[TurnServer]:
    """Every TURN URL of these RTCIceServers that aioice can use, in order (aiortc's rules, all of them)."""
    found: list[TurnServer] = []
    for server in servers:
        for uri in server.urls if isinstance(server.urls, list) else [server.urls]:
            if not uri.startswith("turn") or server.credentialType != "password":
                continue
            parsed = aiortc.rtcicetransport.parse_stun_turn_uri(uri)
            secure = parsed["scheme"] == "turns"
            if parsed["transport"] not in (("tcp",) if secure else ("udp", "tcp")):
                continue
            entry = TurnServer((parsed["host"], parsed["port"]), server.username, server.credential, secure,
                               parsed["transport"])
            if entry not in found:
                found.append(entry)
    return found


_Datagram = TypeVar("_Datagram", bound=asyncio.DatagramProtocol)


async def bind_host_socket(address: str, factory: Callable[[], _Datagram],
                           port_range: tuple[int, int] | None) -> tuple[asyncio.DatagramTransport, _Datagram]:
    """A UDP socket on `address`, on a port in `port_range` (random start, then upwards, wrapping)."""
    loop = asyncio.get_running_loop()
    if port_range is None:
        return await loop.create_datagram_endpoint(factory, local_addr=(address, 0))
    first, last = port_range
    span = last - first + 1
    start = random.randrange(span)
    for step in range(span):
        port = first + (start + step) % span
        try:
            return await loop.create_datagram_endpoint(factory, local_addr=(address, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free UDP port in {first}-{last} on {address}")


class GatheringConnection(aioice.ice.Connection):
    """aioice's Connection with host sockets bound in the port range, host candidates named by the announced
    address, and a relayed candidate from every TURN URL (aiortc passes the first, `more_turn_servers` the
    rest: a client whose UDP is blocked still finds the TCP or TLS one)."""

    def __init__(self, *args: Any, more_turn_servers: list[TurnServer] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.more_turn_servers = list(more_turn_servers or [])
        self.inline: InlineReceive | None = None  # set while its DTLS transport is connected (InlineStunProtocol)

    def _host_candidate(self, component: int, bound: tuple[Any, ...]) -> aioice.Candidate:
        host = str(bound[0])
        announce = _gathering.announce_ip
        address = ipaddress.ip_address(host)
        if announce is not None and not address.is_loopback and address.version == announce.version:
            # The socket stays on the private address; peers are told the public one the NAT maps to it.
            host = str(announce)
        return aioice.Candidate(
            foundation=aioice.ice.candidate_foundation("host", "udp", host),
            component=component,
            transport="udp",
            priority=aioice.ice.candidate_priority(component, "host"),
            host=host,
            port=bound[1],
            type="host",
        )

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[aioice.Candidate]:
        """Host candidates from sockets we bind ourselves (a port in the range, named by the announced
        address); aioice's own method, given no address, adds the relay of the TURN server aiortc gave it;
        alongside, server-reflexive candidates for our sockets and a relay per further TURN URL."""
        hosts = [p for p in [await self._bind_host(component, a) for a in addresses] if p is not None]
        self._protocols += hosts
        aioice_relay = asyncio.ensure_future(super().get_component_candidates(component, [], timeout))
        extra = await self._extra_candidates(component, hosts, timeout)
        return [p.local_candidate for p in hosts] + await aioice_relay + extra

    async def _bind_host(self, component: int, address: str) -> Any:
        try:
            transport, protocol = await bind_host_socket(
                address, lambda: InlineStunProtocol(self), _gathering.port_range)
        except OSError as exc:
            log.warning("ICE: could not bind to %s: %s", address, exc)
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:  # as aioice sizes its own sockets: a burst of video must not overflow the buffer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
        protocol.local_candidate = self._host_candidate(component, transport.get_extra_info("sockname"))
        return protocol

    async def _extra_candidates(self, component: int, hosts: list[Any], timeout: int) -> list[aioice.Candidate]:
        lookups: list[Any] = []
        if self.stun_server:
            # IPv4 only, as aioice does; the request leaves from the bound address whatever the candidate names.
            lookups += [aioice.ice.server_reflexive_candidate(p, self.stun_server) for p in hosts
                        if ipaddress.ip_address(p.transport.get_extra_info("sockname")[0]).version == 4]
        relay_kind = self._transport_policy == aioice.ice.TransportPolicy.RELAY
        lookups += [aioice.ice.relayed_candidate(
            component=component, hide_related_address=relay_kind,
            protocol_factory=lambda: aioice.ice.StunProtocol(self), turn_server=turn.address,
            turn_username=turn.username, turn_password=turn.password, turn_ssl=turn.ssl,
            turn_transport=turn.transport) for turn in self.more_turn_servers]
        if not lookups:
            return []
        tasks = [asyncio.ensure_future(lookup) for lookup in lookups]
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        found = []
        for task in done:
            if task.exception() is not None:
                log.info("ICE: a STUN/TURN server gave no candidate: %s", task.exception())
                continue
            candidate, relay_protocol = task.result()
            found.append(candidate)
            if relay_protocol is not None:
                self._protocols.append(relay_protocol)
        return found


def nominated_candidate_types(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """(local, remote) types of the candidate pair ICE nominated for the media transport, e.g. ("relay",
    "host") through TURN; None before ICE connects. For reports and tests: which path media takes."""
    transport = connection_transport(pc)
    if transport is None:
        return None
    pair = transport.transport._connection._nominated.get(1)
    if pair is None:
        return None
    return str(pair.local_candidate.type), str(pair.remote_candidate.type)


def check_ice_seams() -> list[str]:
    import hashlib
    import inspect

    problems = []
    names = ("get_host_addresses", "StunProtocol", "candidate_foundation", "candidate_priority",
             "server_reflexive_candidate", "relayed_candidate", "TransportPolicy", "Connection")
    problems += [f"aioice.ice.{name} is gone" for name in names if not hasattr(aioice.ice, name)]
    if not hasattr(aioice.turn, "UDP_SOCKET_BUFFER_SIZE"):
        problems.append("aioice.turn.UDP_SOCKET_BUFFER_SIZE is gone")
    source = inspect.getsource(aioice.ice.Connection.get_component_candidates)
    if hashlib.sha256(source.encode()).hexdigest()[:16] != AIOICE_COMPONENT_CANDIDATES_SHA256:
        problems.append("aioice Connection.get_component_candidates changed: check GatheringConnection still fits")
    connection_init = inspect.getsource(aioice.ice.Connection.__init__)
    for attr in ("self._nominated", "self._protocols", "self._transport_policy", "self.stun_server", "self.turn_server",
                 "self.turn_username", "self.turn_password", "self.turn_ssl", "self.turn_transport"):
        if attr not in connection_init:
            problems.append(f"aioice Connection no longer sets {attr}")
    if "get_host_addresses(" not in inspect.getsource(aioice.ice.Connection.gather_candidates):
        problems.append("aioice gather_candidates no longer asks get_host_addresses")
    gatherer = inspect.getsource(aiortc.rtcicetransport.RTCIceGatherer.__init__)
    for call in ("connection_kwargs(", "Connection("):
        if call not in gatherer:
            problems.append(f"aiortc RTCIceGatherer no longer calls {call}…)")
    if "self._connection" not in inspect.getsource(aiortc.rtcicetransport.RTCIceTransport.__init__):
        problems.append("aiortc RTCIceTransport no longer sets self._connection")
    if not hasattr(aiortc.rtcicetransport, "parse_stun_turn_uri"):
        problems.append("aiortc.rtcicetransport.parse_stun_turn_uri is gone")
    return problems


# -- parsers that fail with ValueError only ------------------------------------------------------------
# aiortc's transport drops a datagram whose parsing raises ValueError; any other exception ends its receive
# loop and the connection dies. Two parsers raise struct.error on input a peer chooses (a header-extension
# element of the wrong length; a REMB naming more SSRCs than it carries): both are made to raise ValueError.


def _value_errors_only(
    get: Callable[[HeaderExtensionsMap, int, bytes], HeaderExtensions],
) -> Callable[[HeaderExtensionsMap, int, bytes], HeaderExtensions]:
    def get_extensions(self: HeaderExtensionsMap, profile: int, value: bytes) -> HeaderExtensions:
        try:
            return get(self, profile, value)
        except struct.error as exc:
            raise ValueError(f"RTP header extension of the wrong length: {exc}") from exc

    get_extensions.convene_strict = True
    return get_extensions


def harden_aiortc_parsers() -> None:
    """Idempotent; done when this module is imported."""
    if not getattr(HeaderExtensionsMap.get, "convene_strict", False):
        HeaderExtensionsMap.get = _value_errors_only(HeaderExtensionsMap.get)  # type: ignore[method-assign, assignment]
    # The RTCP router looks it up on the module at each call (`rtp.unpack_remb_fci`).
    aiortc.rtp.unpack_remb_fci = unpack_remb


harden_aiortc_parsers()


# -- cheap joins --------------------------------------------------------------------------------------
# A join costs the server two peer connections and, in a growing room, a renegotiation of everyone's
# subscriber connection. aiortc makes a DTLS certificate per RTCPeerConnection, computes its three
# fingerprints again each time it writes an SDP, parses every SDP we already parsed to check it, and deep-copies
# each codec it negotiates. `install_cheap_joins` (done at import) makes each of these cheap.

# A browser keeps one certificate per origin for its peer connections; we keep one per process and make a new
# one a day (aiortc's are valid for 30 days from the day before they are made).
CERTIFICATE_LIFETIME = 24 * 3600.0


class SharedCertificate(RTCCertificate):
    """RTCPeerConnection calls `generateCertificate()` once per connection: it gets the process's certificate."""

    _current: "SharedCertificate | None" = None
    _made_at = 0.0

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key=key, cert=cert)
        self._fingerprints: list[RTCDtlsFingerprint] | None = None
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}

    @classmethod
    def generateCertificate(cls) -> "SharedCertificate":  # noqa: N802 - aiortc's name
        now = time.monotonic()
        current = cls._current
        if current is None or now - cls._made_at > CERTIFICATE_LIFETIME:
            key = ec.generate_private_key(ec.SECP256R1())
            current = cls._current = cls(key=key, cert=generate_certificate(key))
            cls._made_at = now
        return current

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:  # noqa: N802 - aiortc's name
        """The SHA-256 fingerprint only, as browsers announce (aiortc writes three, into every m-line of every SDP,
        which both ends then parse), computed once (aiortc asks at every SDP it writes)."""
        if self._fingerprints is None:
            self._fingerprints = [f for f in super().getFingerprints() if f.algorithm == "sha-256"]
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        """One OpenSSL context per list of SRTP profiles (aiortc makes one per DTLS transport: the same
        certificate, key, ciphers and profiles, ~160 µs twice per join). Without its session cache, so each
        handshake stays a full one, as with a context of its own, and the shared context holds no sessions."""
        key = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = super()._create_ssl_context(srtp_profiles)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        return context


# The SDP `parse_media_lines` just checked, or the one a ForwardingPeerConnection just wrote, for aiortc's own
# parse of the same text (set*Description): one entry, taken once, so aiortc never shares a description object.
_checked_sdp: dict[str, sdp.SessionDescription] = {}
_aiortc_sdp_parse = sdp.SessionDescription.parse
_aiortc_wrap_description = aiortc.rtcpeerconnection.wrap_session_description
# Set while a ForwardingPeerConnection writes its own offer or answer (aiortc's createOffer and createAnswer never
# suspend, so no other connection's description passes meanwhile; the seam check holds them to that).
_keeping_own = False


def _hand_over(text: str, description: sdp.SessionDescription) -> None:
    """`description` is what aiortc's next parse of `text` takes instead (the one entry before it is dropped)."""
    _checked_sdp.clear()
    _checked_sdp[text] = description


def _parse_once(cls: type, text: str) -> sdp.SessionDescription:
    description = _checked_sdp.pop(text, None)
    return description if description is not None else parse_by_sections(text)


async def _keeping_own_description(writing: Awaitable[RTCSessionDescription]) -> RTCSessionDescription:
    """Runs aiortc's createOffer or createAnswer so that its setLocalDescription takes the description built there
    (`_wrap_description`)."""
    global _keeping_own
    _keeping_own = True
    try:
        return await writing
    finally:
        _keeping_own = False


def _wrap_description(session_description: sdp.SessionDescription | None) -> RTCSessionDescription | None:
    """aiortc's wrap_session_description; for a connection's own offer or answer, the description aiortc built is
    also kept for the setLocalDescription that follows, which would parse again the text it was just written into
    (a late joiner's first offer has ten m-lines, none of them seen before). What aiortc builds is what its parse of
    that text gives (`tests/sfu/test_join_sdp.py` compares them field by field), but for the type, which
    setLocalDescription sets; its lists are copied, as the transceivers hold some of them."""
    wrapped = _aiortc_wrap_description(session_description)
    if _keeping_own and session_description is not None and wrapped is not None:
        own = object.__new__(sdp.SessionDescription)
        own.__dict__.update(session_description.__dict__)
        own.media = [_copy_media(media) for media in session_description.media]
        _hand_over(wrapped.sdp, own)
    return wrapped


# A renegotiation repeats every m-line but the new ones, in our offer and in the answer alike: at 20 people a
# subscriber's SDP has ~40 m-lines, and each join renegotiates every subscriber. aiortc parses each m-line on
# its own (it inherits only the session's fingerprint, setup role and ICE attributes), so a media section
# already parsed in the same session context is taken from `_sections`, as a copy aiortc may change. A section of
# another connection differs only in what the connection brings (the bundle's port and address, its ICE
# credentials, DTLS fingerprints and role, set in the section as browsers do or inherited from the session as
# aiortc does): `_shapes` holds sections by their lines without those values, and a copy of one is given this
# connection's as aiortc's parse sets them. A newcomer's first answer, the same slots as every other
# subscriber's, is so parsed once for all but its first m-line (which carries the candidates).
SECTION_CACHE_SIZE = 4096  # entries of each cache
_sections: dict[str, sdp.MediaDescription] = {}  # by the section's lines in the session's context
_shapes: dict[str, sdp.MediaDescription] = {}  # by the same without the connection's values (_shape)
# The session-level attributes aiortc's parse hands down to every m-line (the rest stay with the session).
_INHERITED = ("a=fingerprint:", "a=setup:", "a=ice-lite", "a=ice-options:", "a=ice-pwd:", "a=ice-ufrag:")
# Of these, the ones whose values are the connection's (set on the copy; in the key only as the attribute).
_PER_CONNECTION = ("a=fingerprint:", "a=setup:", "a=ice-pwd:", "a=ice-ufrag:")
_SHAPED = ("m=", "c=", *_PER_CONNECTION)  # the lines _shape changes
_M_LINE = re.compile("^m=([^ ]+) ([0-9]+) ([A-Z/]+) (.+)$")
# aiortc's SessionDescription.parse as read when this seam was written: another version may inherit more.
_AIORTC_COMMON_SHA256 = "2415d76d0aa2c211c2f39989eede0474745a983fe0d476112986d44a14354ed7"
_AIORTC_PARSE_SHA256 = "b689a9c7517e5befd61aabdf7c741b4f831848dadd1b2b33758cb209d2f930ed"


def _shape(line: str) -> str:
    """A line as `_shapes`' keys hold it: a connection's value left out."""
    if line.startswith(_PER_CONNECTION):
        return line[:line.index(":") + 1]
    if line.startswith("c="):
        return "c="
    if line.startswith("m="):
        m = _M_LINE.match(line)
        # One aiortc refuses keeps a key of its own (with "!"), so it is parsed (and refused) every time.
        return f"m={m.group(1)} * {m.group(3)} {m.group(4)}" if m is not None else "!" + line
    return line


@dataclass
class _Connection:
    """What a connection's lines say: the values _shape leaves out of the key, as aiortc's parse reads them."""

    fingerprints: list[RTCDtlsFingerprint]
    role: str | None = None
    ufrag: str | None = None
    pwd: str | None = None
    host: str | None = None

    def read(self, lines: list[str]) -> "_Connection":
        """The same, with `lines` (of _SHAPED, but m-lines) read after what it holds (a later value wins)."""
        for line in lines:
            if line.startswith("c="):
                self.host = sdp.ipaddress_from_sdp(line[2:])
                continue
            attr, value = sdp.parse_attr(line)
            value = value or ""  # never None: each prefix ends in ":"
            if attr == "fingerprint":
                algorithm, fingerprint = value.split()
                self.fingerprints.append(RTCDtlsFingerprint(algorithm=algorithm, value=fingerprint))
            elif attr == "setup":
                self.role = sdp.DTLS_SETUP_ROLE[value]
            elif attr == "ice-pwd":
                self.pwd = value
            elif attr == "ice-ufrag":
                self.ufrag = value
        return self

    def set_on(self, media: sdp.MediaDescription, m_line: str) -> None:
        """`m_line` is one _M_LINE matched (_shape gave its section the key of a section aiortc parsed)."""
        media.port = int(m_line.split(" ", 2)[1])
        media.host = self.host
        # aiortc leaves a section without a setup role (its own or the session's) without DTLS parameters.
        media.dtls = None if self.role is None else RTCDtlsParameters(fingerprints=self.fingerprints, role=self.role)
        assert media.ice is not None
        media.ice = RTCIceParameters(usernameFragment=self.ufrag, password=self.pwd, iceLite=media.ice.iceLite)


def parse_by_sections(text: str) -> sdp.SessionDescription:
    """aiortc's SessionDescription.parse, with each media section parsed once: a section seen before in the same
    session context is a copy of it; one seen in another connection's, a copy with this connection's values."""
    session_lines, media_groups = sdp.grouplines(text)
    session_text = "\r\n".join(session_lines) + "\r\n"
    description = _aiortc_sdp_parse(session_text)
    inherited = [line for line in session_lines if line.startswith(_INHERITED)]
    context = "\n".join(inherited)
    shaped_context: str | None = None  # made at the first section not seen in this context
    session: _Connection | None = None  # read at the first section seen only in another connection
    for lines in media_groups:
        key = context + "\n\n" + "\n".join(lines)
        cached = _sections.get(key)
        if cached is not None:
            description.media.append(_copy_media(cached))
            continue
        if shaped_context is None:
            shaped_context = "\n".join(_shape(line) for line in inherited)
        shape = shaped_context + "\n\n" + "\n".join(
            [_shape(line) if line.startswith(_SHAPED) else line for line in lines])
        template = _shapes.get(shape)
        if template is None:
            media = _aiortc_sdp_parse(session_text + "\r\n".join(lines) + "\r\n").media[0]
            if not media.ice_candidates:  # candidates name the connection's ports: no other has the same
                _remember(_shapes, shape, media)
        else:
            media = _copy_media(template)
            if session is None:
                session = _Connection([]).read([line for line in inherited if line.startswith(_PER_CONNECTION)])
            own = replace(session, fingerprints=list(session.fingerprints))
            own.read([line for line in lines[1:] if line.startswith(_SHAPED)]).set_on(media, lines[0])
        _remember(_sections, key, media)
        description.media.append(media)
    return description


def _remember(cache: dict[str, sdp.MediaDescription], key: str, media: sdp.MediaDescription) -> None:
    if len(cache) >= SECTION_CACHE_SIZE:
        del cache[next(iter(cache))]  # the oldest
    cache[key] = _copy_media(media)


# The fields _copy_media knows (the seam check compares them with aiortc's).
_COPIED_FIELDS = {
    "MediaDescription": {"direction", "dtls", "fmt", "host", "ice", "ice_candidates", "ice_candidates_complete",
                         "ice_options", "kind", "msid", "port", "profile", "rtcp_host", "rtcp_mux", "rtcp_port", "rtp",
                         "sctpCapabilities", "sctp_port", "sctpmap", "ssrc", "ssrc_group"},
    "RTCRtpParameters": {"codecs", "headerExtensions", "muxId", "rtcp"},
    "RTCIceParameters": {"iceLite", "password", "usernameFragment"},
    "RTCDtlsParameters": {"fingerprints", "role"},
}


def _copy_media(media: sdp.MediaDescription) -> sdp.MediaDescription:
    """A copy whose lists and parameter objects are its own: aiortc assigns and appends to these (candidates, ICE
    and DTLS parameters, the fingerprints). Codecs, header extensions, candidates and SSRC entries are shared:
    nothing changes them in place (aiortc copies the codecs it negotiates)."""
    copy = object.__new__(sdp.MediaDescription)
    copy.__dict__.update(media.__dict__)
    copy.fmt = list(media.fmt)
    copy.ssrc = list(media.ssrc)
    copy.ssrc_group = list(media.ssrc_group)
    copy.rtp = RTCRtpParameters(codecs=list(media.rtp.codecs), headerExtensions=list(media.rtp.headerExtensions),
                                muxId=media.rtp.muxId, rtcp=media.rtp.rtcp)
    copy.sctpmap = dict(media.sctpmap)
    if media.dtls is not None:
        copy.dtls = RTCDtlsParameters(fingerprints=list(media.dtls.fingerprints), role=media.dtls.role)
    if media.ice is not None:
        copy.ice = RTCIceParameters(usernameFragment=media.ice.usernameFragment, password=media.ice.password,
                                    iceLite=media.ice.iceLite)
    copy.ice_candidates = list(media.ice_candidates)
    return copy


# setRemoteDescription negotiates the codecs of every m-line again at each renegotiation (~0.5 ms an m-line, most of
# it H.264 profile parsing). An m-line from the section cache carries the very codec objects of the last time (they
# are shared, never changed), so the outcome is kept by their identity; the entry holds them, so ids stay theirs.
COMMON_CODECS_CACHE_SIZE = 1024
_aiortc_find_common_codecs = aiortc.rtcpeerconnection.find_common_codecs
_common_codecs: dict[tuple[int, ...], tuple[list[RTCRtpCodecParameters], tuple[RTCRtpCodecParameters, ...],
                                              list[RTCRtpCodecParameters], int]] = {}


def _find_common_codecs(local_codecs: list[RTCRtpCodecParameters],
                        remote_codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    key = (id(local_codecs), *map(id, remote_codecs))
    entry = _common_codecs.get(key)
    if entry is None or entry[0] is not local_codecs or len(local_codecs) != entry[3]:
        common = _aiortc_find_common_codecs(local_codecs, remote_codecs)
        if len(_common_codecs) >= COMMON_CODECS_CACHE_SIZE:
            del _common_codecs[next(iter(_common_codecs))]
        entry = _common_codecs[key] = (local_codecs, tuple(remote_codecs), common, len(local_codecs))
    return [_copy_codec(codec, {}) for codec in entry[2]]  # the caller's own: aiortc and we change them


# Set while a ForwardingPeerConnection makes a transceiver: aiortc then builds a ForwardingSender and a
# ForwardingReceiver directly.
_forwarding_parts = False


def _make_receiver(kind: str, transport: RTCDtlsTransport) -> RTCRtpReceiver:
    """What `aiortc.rtcpeerconnection` calls by the name RTCRtpReceiver: a video RTCRtpReceiver builds a bandwidth
    estimator of 1000 rate buckets that a forwarding connection would throw away at once (~1.5 ms each)."""
    if _forwarding_parts:
        return ForwardingReceiver(kind, transport)
    return RTCRtpReceiver(kind, transport)


def _make_sender(track_or_kind: MediaStreamTrack | str, transport: RTCDtlsTransport) -> RTCRtpSender:
    """What `aiortc.rtcpeerconnection` calls by the name RTCRtpSender: a forwarding connection replaced the sender
    aiortc built (two UUIDs, three events, ~20 µs) at once; a joiner's subscriber connection makes ~56 slots. A
    forwarding sender never sends a track of its own (it forwards): given one, it takes only its kind."""
    if _forwarding_parts:
        return ForwardingSender(track_or_kind if isinstance(track_or_kind, str) else track_or_kind.kind, transport)
    return RTCRtpSender(track_or_kind, transport)


def _copy_codec(self: RTCRtpCodecParameters, memo: dict[int, Any]) -> RTCRtpCodecParameters:
    """copy.deepcopy of a codec as aiortc's negotiation makes it, without the generic machinery: its fields are
    strings and numbers, a list of feedback entries (strings) and a dict of strings and numbers."""
    return RTCRtpCodecParameters(mimeType=self.mimeType, clockRate=self.clockRate, channels=self.channels,
                                 payloadType=self.payloadType,
                                 rtcpFeedback=[RTCRtcpFeedback(type=f.type, parameter=f.parameter)
                                               for f in self.rtcpFeedback],
                                 parameters=dict(self.parameters))


def install_cheap_joins() -> None:
    """Idempotent; done when this module is imported."""
    aiortc.rtcpeerconnection.RTCCertificate = SharedCertificate
    aiortc.rtcpeerconnection.RTCRtpReceiver = _make_receiver  # type: ignore[assignment]
    aiortc.rtcpeerconnection.RTCRtpSender = _make_sender  # type: ignore[assignment]
    aiortc.rtcpeerconnection.find_common_codecs = _find_common_codecs
    sdp.SessionDescription.parse = classmethod(_parse_once)  # type: ignore[method-assign, assignment]
    aiortc.rtcpeerconnection.wrap_session_description = _wrap_description
    RTCRtpCodecParameters.__deepcopy__ = _copy_codec


def check_join_seams() -> list[str]:
    import dataclasses
    import hashlib

    problems = []
    if "RTCCertificate.generateCertificate()" not in inspect_source(RTCPeerConnection.__init__):
        problems.append("RTCPeerConnection no longer calls RTCCertificate.generateCertificate()")
    if "certificate_digest(self._cert" not in inspect_source(RTCCertificate.getFingerprints):
        problems.append("RTCCertificate.getFingerprints no longer digests self._cert")
    if "local_certificate._create_ssl_context(" not in inspect_source(RTCDtlsTransport.start):
        problems.append("RTCDtlsTransport.start no longer asks its certificate for the SSL context")
    context_source = inspect_source(RTCCertificate._create_ssl_context)
    if "set_session_cache_mode" in context_source or "set_tlsext_use_srtp" not in context_source:
        problems.append("RTCCertificate._create_ssl_context changed: check that one context can serve every "
                        "transport (SharedCertificate._create_ssl_context)")
    if "sha-256" not in aiortc.rtcdtlstransport.X509_DIGEST_ALGORITHMS:
        problems.append("aiortc no longer offers sha-256 fingerprints")
    for method in (RTCPeerConnection.setLocalDescription, RTCPeerConnection.setRemoteDescription):
        if "sdp.SessionDescription.parse(" not in inspect_source(method):
            problems.append(f"RTCPeerConnection.{method.__name__} no longer parses with SessionDescription.parse")
    for writer in (RTCPeerConnection.createOffer, RTCPeerConnection.createAnswer):
        source = inspect_source(writer)
        if "return wrap_session_description(description)" not in source or "await " in source:
            problems.append(f"RTCPeerConnection.{writer.__name__} no longer writes its description with "
                            "wrap_session_description without suspending (_wrap_description keeps it)")
    if "receiver=RTCRtpReceiver(kind, dtlsTransport)" not in inspect_source(
            RTCPeerConnection._RTCPeerConnection__createTransceiver):
        problems.append("RTCPeerConnection no longer builds receivers as RTCRtpReceiver(kind, dtlsTransport)")
    if "sender=RTCRtpSender(sender_track or kind, dtlsTransport)" not in inspect_source(
            RTCPeerConnection._RTCPeerConnection__createTransceiver):
        problems.append("RTCPeerConnection no longer builds senders as RTCRtpSender(sender_track or kind, ...)")
    for line in ("transceiver.receiver._set_rtcp_ssrc(transceiver.sender._ssrc)",
                 "transceiver.sender._stream_id = self.__stream_id"):
        if line not in inspect_source(RTCPeerConnection._RTCPeerConnection__createTransceiver):
            problems.append(f"RTCPeerConnection's transceivers no longer get `{line}`")
    if "find_common_codecs(CODECS[media.kind], media.rtp.codecs)" not in inspect_source(
            RTCPeerConnection.setRemoteDescription):
        problems.append("setRemoteDescription no longer negotiates with find_common_codecs(CODECS[kind], remote)")
    if hashlib.sha256(inspect_source(_aiortc_find_common_codecs).encode()).hexdigest() != _AIORTC_COMMON_SHA256:
        problems.append("aiortc's find_common_codecs changed: check that its outcome still depends on its "
                        "arguments only (_find_common_codecs keeps it)")
    if hashlib.sha256(inspect_source(_aiortc_sdp_parse).encode()).hexdigest() != _AIORTC_PARSE_SHA256:
        problems.append("aiortc's SessionDescription.parse changed: check what parse_by_sections assumes "
                        "(which session attributes m-lines inherit)")
    found = {"MediaDescription": set(vars(sdp.MediaDescription(kind="audio", port=9, profile="", fmt=[]))),
             "RTCRtpParameters": {f.name for f in dataclasses.fields(RTCRtpParameters)},
             "RTCIceParameters": {f.name for f in dataclasses.fields(RTCIceParameters)},
             "RTCDtlsParameters": {f.name for f in dataclasses.fields(RTCDtlsParameters)}}
    for name, fields in found.items():
        if fields != _COPIED_FIELDS[name]:
            problems.append(f"{name} has other fields now ({sorted(fields)}): check _copy_media")
    codec_fields = {f.name for f in dataclasses.fields(RTCRtpCodecParameters)}
    if codec_fields != {"mimeType", "clockRate", "channels", "payloadType", "rtcpFeedback", "parameters"}:
        problems.append(f"RTCRtpCodecParameters has other fields now ({sorted(codec_fields)}): check _copy_codec")
    if {f.name for f in dataclasses.fields(RTCRtcpFeedback)} != {"type", "parameter"}:
        problems.append("RTCRtcpFeedback has other fields now: check _copy_codec")
    return problems


install_cheap_joins()


# -- seam check -----------------------------------------------------------------------------------


def check_seams() -> list[str]:
    """Returns what moved (empty when every seam is where this module expects it)."""
    problems = []
    expected = {
        RTCPeerConnection: ["_RTCPeerConnection__createTransceiver"],
        RTCRtpReceiver: ["_handle_rtp_packet", "_handle_rtcp_packet", "_run_rtcp", "_set_rtcp_ssrc"],
        RTCRtpSender: ["_run_rtp", "_handle_rtcp_packet", "_run_rtcp", "send"],
        RTCDtlsTransport: ["_register_rtp_receiver", "_send_rtp", "_handle_rtp_data"],
        RtpRouter: ["route_rtp", "register_receiver"],
    }
    for cls, names in expected.items():
        for name in names:
            if not hasattr(cls, name):
                problems.append(f"{cls.__name__}.{name} is gone")
    problems += check_ice_seams()
    problems += srtp_problems()
    problems += check_join_seams()
    pair_init = inspect_source(aioice.ice.CandidatePair.__init__)
    for attr in ("self.protocol", "self.remote_candidate"):
        if attr not in pair_init:
            problems.append(f"aioice CandidatePair no longer sets {attr}")
    # WatchedPairs (batched fan-out) hears a new nominated pair only if aioice changes the dict, never replaces it.
    import asyncio.selector_events
    import re

    connection_src = inspect_source(aioice.ice.Connection)
    if len(re.findall(r"self\._nominated\s*(?::[^=\n]*)?=(?!=)", connection_src)) != 1 \
            or "self._nominated[" not in connection_src:
        problems.append("aioice Connection no longer changes _nominated in place: WatchedPairs would miss a new pair")
    if not hasattr(asyncio.selector_events._SelectorDatagramTransport, "get_write_buffer_size"):
        problems.append("asyncio datagram transports no longer tell their backlog (get_write_buffer_size)")
    if "self._buffer.append(" not in inspect_source(asyncio.selector_events._SelectorDatagramTransport.sendto):
        problems.append("asyncio's datagram sendto no longer queues in itself (watch_backlog watches sendto)")
    for name in ("remote_addr", "local_candidate"):  # local_candidate.type tells a TURN pair
        if not isinstance(getattr(aioice.ice.CandidatePair, name, None), property):
            problems.append(f"aioice CandidatePair.{name} is gone")
    if not hasattr(RTCDtlsTransport, "on") or "statechange" not in inspect_source(RTCDtlsTransport._set_state):
        problems.append("RTCDtlsTransport no longer emits statechange")
    if not hasattr(aiortc.rtp, "unpack_remb_fci") or not hasattr(HeaderExtensionsMap, "get"):
        problems.append("aiortc.rtp.unpack_remb_fci or HeaderExtensionsMap.get is gone")
    private_attrs = {
        RTCRtpReceiver: ["_RTCRtpReceiver__kind", "_RTCRtpReceiver__codecs", "_RTCRtpReceiver__remote_streams", "_RTCRtpReceiver__rtx_ssrc",
                         "_RTCRtpReceiver__started", "_RTCRtpReceiver__rtcp_task", "_RTCRtpReceiver__rtcp_ssrc",
                         "_RTCRtpReceiver__rtcp_started", "_RTCRtpReceiver__rtcp_exited", "_RTCRtpReceiver__lsr",
                         "_RTCRtpReceiver__lsr_time"],
        RTCRtpSender: ["_RTCRtpSender__rtp_header_extensions_map", "_RTCRtpSender__started",
                       "_RTCRtpSender__rtp_started", "_RTCRtpSender__rtp_exited", "_RTCRtpSender__packet_count",
                       "_RTCRtpSender__octet_count", "_RTCRtpSender__ntp_timestamp",
                       "_RTCRtpSender__rtp_timestamp", "_ssrc", "_rtx_ssrc", "_stream_id",
                       "_RTCRtpSender__rtcp_started", "_RTCRtpSender__rtcp_exited", "_RTCRtpSender__lsr",
                       "_RTCRtpSender__lsr_time", "_RTCRtpSender__cname"],
    }
    for cls, attrs in private_attrs.items():
        source = _init_source(cls)
        for attr in attrs:
            short = attr.split("__", 1)[1] if attr.startswith("_RTC") else attr
            if f"self.__{short}" not in source and f"self.{attr}" not in source and f"self.{short}" not in source:
                problems.append(f"{cls.__name__} no longer sets {attr}")
    problems += check_inline_receive_seams()
    transceiver_src = _init_source(RTCRtpTransceiver)
    for attr in ("self.__sender", "self.__receiver"):
        if attr not in transceiver_src:
            problems.append(f"RTCRtpTransceiver no longer sets {attr}")
    return problems


def check_inline_receive_seams() -> list[str]:
    """What InlineReceive and InlineStunProtocol read of aiortc and aioice."""
    problems = []
    dtls_init = _init_source(RTCDtlsTransport)
    for attr in ("self.__rx_bytes", "self.__rx_packets", "self._rx_srtp", "self._rtp_header_extensions_map",
                 "self._rtp_router"):
        if attr not in dtls_init:
            problems.append(f"RTCDtlsTransport no longer sets {attr}")
    if not hasattr(RTCDtlsTransport, "_handle_rtcp_data"):
        problems.append("RTCDtlsTransport._handle_rtcp_data is gone")
    recv_next = inspect_source(RTCDtlsTransport._recv_next)
    if "first_byte > 127 and first_byte < 192" not in recv_next or "unprotect_rtcp" not in recv_next:
        problems.append("aiortc's RTCDtlsTransport._recv_next demultiplexes differently: check InlineReceive")
    if "self.receiver = receiver" not in _init_source(aioice.ice.StunProtocol):
        problems.append("aioice StunProtocol no longer sets self.receiver")
    if "self.receiver.data_received(" not in inspect_source(aioice.ice.StunProtocol.datagram_received):
        problems.append("aioice StunProtocol.datagram_received no longer hands data to its receiver")
    if "self._queue" not in _init_source(aioice.ice.Connection):
        problems.append("aioice Connection no longer sets self._queue")
    if "self.__ids = HeaderExtensions()" not in _init_source(HeaderExtensionsMap):
        problems.append("aiortc HeaderExtensionsMap no longer keeps its ids in __ids (extension_ids)")
    read_ready = inspect_source(asyncio.selector_events._SelectorDatagramTransport._read_ready)
    if "self._conn_lost" not in read_ready or "self._sock.recvfrom(self.max_size)" not in read_ready:
        problems.append("asyncio's datagram transport reads differently: check InlineStunProtocol._queued")
    add_reader = inspect_source(asyncio.selector_events.BaseSelectorEventLoop._add_reader)
    if "reader.cancel()" not in add_reader or "return handle" not in add_reader:
        problems.append("asyncio's _add_reader no longer replaces an fd's reader: check SocketDrain")
    nack_init = _init_source(NackGenerator)
    if "self.max_seq" not in nack_init or "self.missing" not in nack_init or not hasattr(NackGenerator, "truncate"):
        problems.append("aiortc NackGenerator changed: check nack_add")
    problems += check_receive_route_seams()
    return problems


def check_receive_route_seams() -> list[str]:
    """What ReceiveRoute hands between aiortc's StreamStatistics and the C route (convene_receive mirrors `add`)."""
    problems = []
    stats_init = _init_source(StreamStatistics)
    for attr in ("self.max_seq", "self.cycles", "self.packets_received", "self._jitter_q4", "self._last_arrival",
                 "self._last_timestamp"):
        if attr not in stats_init:
            problems.append(f"aiortc StreamStatistics no longer sets {attr}: check ReceiveRoute")
    add = inspect_source(StreamStatistics.add)
    for step in ("arrival = int(time.time() * self._clockrate)", "self.cycles += 1 << 16",
                 "self._jitter_q4 += diff - ((self._jitter_q4 + 8) >> 4)"):
        if step not in add:
            problems.append(f"aiortc StreamStatistics.add changed ({step!r} is gone): check convene_receive")
    return problems


def _init_source(cls: type) -> str:
    import inspect

    return inspect.getsource(cls.__init__)  # type: ignore[misc]
