"""The batched fan-out (#14): one compiled call per incoming packet for every steady subscriber of one
publication layer, instead of a Python call chain and a C call per subscriber.

A subscription is steady while nothing about its packets needs a decision: its forwarder started, it is on its
target layer, its connection's send path is compiled and resolved for the nominated pair, and that socket's
asyncio transport holds no backlog. Its per-subscriber state (SSRC, sequence and timestamp offsets, payload
types, the connection's own libsrtp session, the socket, the header's constant bytes) sits in a C array that
Python writes only when a subscription joins or leaves. Anything that needs Python (a layer switch, a keyframe
wait, a new pair, a pause, a backlog) makes the subscription leave: it is forwarded by `Subscription.forward`
again, and joins again once steady. The counters are read lazily (sender reports, NACKs, statistics).

The send path's ordering rule holds as on the per-subscriber paths: a socket whose transport holds a backlog is
never sent on directly (such entries are skipped and leave), and a packet that met EAGAIN was protected once and
is handed to the transport as is (a second protect would reuse the GCM nonce).
"""

from __future__ import annotations

import logging
import operator
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sfu.aiortc_seams import (
    BatchSource,
    ForwardingSender,
    RtpPath,
    any_backlog,
    compiled_send,
    shared_send_time,
    watch_backlog,
)
from sfu.rtp import RtpPacket

if TYPE_CHECKING:
    from sfu.subscription import Subscription

log = logging.getLogger("convene.sfu.fanout")

_backlog = operator.methodcaller("get_write_buffer_size")
_fanouts: "weakref.WeakSet[FanOut]" = weakref.WeakSet()


def flush_all() -> int:
    """Folds every batch's counters into Python's now (tests, reports); returns how many entries are batched."""
    count = 0
    for fanout in list(_fanouts):
        for entry in fanout.members:
            entry.flush()
            count += 1
    return count


class Entry:
    """One steady subscription's place in a FanOut (its index moves when others leave)."""

    __slots__ = ("fanout", "index", "subscription", "sender", "path", "aio", "_seen", "_leave")

    def __init__(self, fanout: "FanOut", index: int, subscription: "Subscription", sender: ForwardingSender,
                 path: RtpPath) -> None:
        self.fanout = fanout
        self.index = index
        self.subscription = subscription
        self.sender = sender
        self.path = path
        self.aio = path.aio_transport()
        self._seen = (0, 0, 0, 0)  # packets, octets, bytes, fast sends already folded into Python's counters
        self._leave: Callable[[], None] = subscription.leave_batch

    def flush(self) -> None:
        """Folds what C sent since the last flush into the sender, the forwarder and the path."""
        c = self.fanout.entries[self.index]
        if c.packets == self._seen[0]:
            return  # nothing sent since (the other counters move only with it): the report clock asks every second
        now = (int(c.packets), int(c.octets), int(c.bytes), int(c.fast))
        packets, octets, nbytes, fast = (a - b for a, b in zip(now, self._seen))
        self._seen = now
        last = (int(c.last_seq), int(c.last_ts), float(c.last_wall)) if c.last_wall else None
        if packets:
            self.sender.absorb(packets, octets, nbytes, last)
            forwarder = self.subscription.forwarder
            if forwarder is not None:
                forwarder.absorb(packets, last)
        self.path.fast_sends += fast

    def newest(self) -> int:
        return int(self.fanout.entries[self.index].last_seq)


class FanOut:
    """The steady subscriptions of one publication layer (its packets' payload type `in_pt`)."""

    def __init__(self) -> None:
        compiled = compiled_send()
        assert compiled is not None
        self._ffi, self._lib, self._protect = compiled
        self._capacity = 0
        self.entries: Any = None
        self._status: Any = None
        self.members: list[Entry] = []
        self._aios: list[Any] = []
        self._grow(8)
        _fanouts.add(self)

    def __len__(self) -> int:
        return len(self.members)

    def _grow(self, capacity: int) -> None:
        entries = self._ffi.new("struct convene_entry[]", capacity)
        if self.entries is not None and self.members:
            self._ffi.memmove(entries, self.entries, self._ffi.sizeof("struct convene_entry") * len(self.members))
        self.entries = entries
        self._status = self._ffi.new("int[]", capacity)
        self._capacity = capacity

    def join(self, subscription: "Subscription", sender: ForwardingSender, source: BatchSource, in_pt: int,
             out_pt: int, upstream_ssrc: int) -> Entry | None:
        """Adds a steady subscription whose sender said it may be batched now (`source`, its batch_source());
        None while its forwarder has not started."""
        forwarder = subscription.forwarder
        if forwarder is None or not forwarder.started:
            return None
        path, shapes, ssrc = source
        if not watch_backlog(path.aio_transport()):
            return None  # `backlogged` could not answer for it without asking
        if len(self.members) == self._capacity:
            self._grow(self._capacity * 2)
        index = len(self.members)
        entry = Entry(self, index, subscription, sender, path)
        c = self.entries[index]
        ctx, buf, fd, address = path.c_target()
        c.ctx = self._ffi.cast("void *", ctx)
        c.buf = self._ffi.cast("unsigned char *", buf)
        c.fd = fd
        c.addrlen = len(address)
        self._ffi.memmove(c.addr, address, len(address))
        for shape, (constant, padding) in enumerate(shapes[:2]):
            self._ffi.memmove(c.constant[shape], constant, len(constant))
            c.constant_len[shape] = len(constant)
            c.pad[shape] = padding
        c.with_time = 1 if shapes[2] else 0
        c.level_id = shapes[3]
        c.ssrc = ssrc
        c.in_pt, c.out_pt = in_pt, out_pt
        seq_offset, ts_offset, last_seq, last_ts = forwarder.batch_state()
        c.seq_offset, c.ts_offset, c.last_seq, c.last_ts = seq_offset, ts_offset, last_seq, last_ts
        c.last_wall = 0.0
        c.packets = c.octets = c.bytes = c.fast = 0
        self.members.append(entry)
        self._aios.append(entry.aio)
        path.watchers.add(entry._leave)
        sender.flush_batch = entry.flush
        forwarder.enter_batch(upstream_ssrc, entry.newest)
        return entry

    def leave(self, entry: Entry) -> None:
        """Takes the entry out, its counters folded into Python's first."""
        entry.flush()
        entry.path.watchers.discard(entry._leave)
        if entry.sender.flush_batch == entry.flush:
            entry.sender.flush_batch = None
        forwarder = entry.subscription.forwarder
        if forwarder is not None:
            forwarder.leave_batch()
        last = len(self.members) - 1
        index = entry.index
        if index != last:
            moved = self.members[last]
            self._ffi.memmove(self.entries + index, self.entries + last, self._ffi.sizeof("struct convene_entry"))
            moved.index = index
            self.members[index] = moved
            self._aios[index] = moved.aio
        self.members.pop()
        self._aios.pop()
        entry.index = -1

    def backlogged(self) -> bool:
        """Some member's socket holds a backlog in its asyncio transport (its order is Python's to keep). Members'
        transports are watched (`watch_backlog`): while none of those holds one, none is asked."""
        return any_backlog() and any(map(_backlog, self._aios))

    def send(self, packet: RtpPacket, keyframe: bool, layer: int) -> None:
        """Hot path: one packet to every member; the ones C could not serve leave and are forwarded by Python."""
        members = self.members
        n = len(members)
        if packet.csrc or packet.padding_size:  # such packets need serialize: everyone leaves for Python
            for entry in list(members):
                entry.subscription.leave_batch()
                entry.subscription.forward(packet, keyframe, layer)
            return
        skip = self._ffi.NULL
        if self.backlogged():
            skip = bytes(1 if size else 0 for size in map(_backlog, self._aios))
        level = packet.extensions.audio_level
        level_byte = -1 if level is None else ((0x80 if level[0] else 0) | (level[1] & 0x7F))
        payload = packet.payload
        status = self._status
        others = self._lib.convene_fanout(self._protect, self.entries, n, packet.marker, packet.payload_type,
                                          packet.sequence_number, packet.timestamp, shared_send_time(packet),
                                          level_byte, payload, len(payload), skip, status)
        if others:
            self.settle(packet, keyframe, layer, n)

    def settle(self, packet: RtpPacket, keyframe: bool, layer: int, n: int) -> None:
        """After a C fan-out of `packet` to the first `n` members: what it could not send is Python's."""
        members = self.members
        status = self._status
        redo = []
        for i in range(n):
            result = status[i]
            if result > 0:
                members[i].path.queue_protected(result)
            elif result == -1:
                redo.append(members[i])
            elif result == -2:
                members[i].path.dropped += 1
        for entry in redo:
            entry.subscription.leave_batch()
            entry.subscription.forward(packet, keyframe, layer)
