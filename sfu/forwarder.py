"""Per-subscription header rewriting: sequence numbers and timestamps that stay continuous for the
subscriber across pauses, source changes and layer switches, and a record of what was sent for NACKs.

A video subscription starts (and restarts after `rebase()`) only on a keyframe, so the subscriber's
decoder never sees a delta frame it cannot use.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sfu.rtp import SEQ_MOD, TS_MOD, seq_newer

# Sent packets remembered for NACKs: as many as the publication's packet cache holds (video).
VIDEO_HISTORY = 512
# A packet is resent at most once in this long (a receiver repeats its NACK until the packet comes).
RESEND_INTERVAL = 0.1


@dataclass
class Sent:
    out_seq: int
    orig_seq: int
    ts_offset: int
    orig_ssrc: int  # which upstream stream (simulcast layer) it came from


class Forwarder:
    def __init__(self, clock_rate: int, needs_keyframe: bool,
                 continue_from: tuple[int, int, float] | None = None, history: int = VIDEO_HISTORY) -> None:
        """`continue_from` (last sequence number, timestamp, monotonic time sent) continues a stream an
        earlier subscription sent on the same SSRC: a receiver that sees the sequence jump back or
        far ahead on one SSRC discards frames, so a reused m-line must go on where it stopped."""
        self.clock_rate = clock_rate
        self.needs_keyframe = needs_keyframe
        self._started = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_out_seq = random.randrange(SEQ_MOD // 2)
        self._last_out_ts = random.randrange(TS_MOD)
        self._last_wall = 0.0
        if continue_from is not None:
            self._last_out_seq, self._last_out_ts, self._last_wall = continue_from
        # What went out as each sequence number (for NACKs): parallel rings, no allocation per packet.
        # Audio is not NACKed (history=0): in a big room a subscriber has a hundred of these.
        self._history = history
        self._sent_seq = [-1] * history
        self._sent_orig = [0] * history
        self._sent_offset = [0] * history
        self._sent_ssrc = [0] * history
        self._resent_seq = [-1] * history
        self._resent_at = [0.0] * history
        # While a batched fan-out (sfu/fanout.py) sends, nothing passes `accept`: the offsets are fixed, so what
        # went out as a sequence number is known from the range it sent (first, newest, seq offset, ts offset,
        # upstream SSRC). The open range's newest is read from the batch; closed ranges are kept for NACKs.
        self._batch: tuple[int, int, int, int] | None = None
        self._batch_newest: Callable[[], int] | None = None
        self._ranges: list[tuple[int, int, int, int, int]] = []
        self.packets = 0
        self.dropped_waiting_keyframe = 0
        # Incremented at every (re)start: the timestamp offset, and so the sender-report mapping, changed.
        self.epoch = 0

    @property
    def started(self) -> bool:
        return self._started

    def rebase(self) -> None:
        """Source or layer changes: the next packet (a keyframe for video) continues the output."""
        self._started = False

    def accept(self, seq: int, timestamp: int, keyframe_start: bool, ssrc: int = 0) -> tuple[int, int] | None:
        """Returns the subscriber's (sequence number, timestamp) for this packet, or None to drop it."""
        if not self._started:
            if self.needs_keyframe and not keyframe_start:
                self.dropped_waiting_keyframe += 1
                return None
            self._start(seq, timestamp)
        out_seq = (seq + self._seq_offset) % SEQ_MOD
        out_ts = (timestamp + self._ts_offset) % TS_MOD
        if seq_newer(out_seq, self._last_out_seq):
            self._last_out_seq = out_seq
            self._last_out_ts = out_ts
            self._last_wall = time.monotonic()
        if self._history:
            slot = out_seq % self._history
            self._sent_seq[slot] = out_seq
            self._sent_orig[slot] = seq
            self._sent_offset[slot] = self._ts_offset
            self._sent_ssrc[slot] = ssrc
        self.packets += 1
        return out_seq, out_ts

    def _start(self, seq: int, timestamp: int) -> None:
        next_seq = (self._last_out_seq + 1) % SEQ_MOD
        # Advance the timestamp by the wall time since the last packet sent, so players keep pace.
        gap = time.monotonic() - self._last_wall if self._last_wall else 0.0
        next_ts = (self._last_out_ts + max(1, int(gap * self.clock_rate))) % TS_MOD
        self._seq_offset = (next_seq - seq) % SEQ_MOD
        self._ts_offset = (next_ts - timestamp) % TS_MOD
        self._last_out_seq = (next_seq - 1) % SEQ_MOD
        self._started = True
        self.epoch += 1

    # -- the batched fan-out ----------------------------------------------------------------------

    def batch_state(self) -> tuple[int, int, int, int]:
        """(sequence offset, timestamp offset, last sequence number, last timestamp) for a batch entry."""
        return self._seq_offset, self._ts_offset, self._last_out_seq, self._last_out_ts

    def enter_batch(self, ssrc: int, newest: Callable[[], int]) -> None:
        """A batch sends from now on (only while started: the offsets stay as they are until `leave_batch`)."""
        self._batch = ((self._last_out_seq + 1) % SEQ_MOD, self._seq_offset, self._ts_offset, ssrc)
        self._batch_newest = newest

    def absorb(self, packets: int, last: tuple[int, int, float] | None) -> None:
        """Counts what the batch sent since it was last asked."""
        self.packets += packets
        if last is not None:
            self._last_out_seq, self._last_out_ts, self._last_wall = last

    def leave_batch(self) -> None:
        if self._batch is None:
            return
        first, seq_offset, ts_offset, ssrc = self._batch
        if seq_newer(self._last_out_seq, (first - 1) % SEQ_MOD):  # it sent something
            self._ranges = [*self._ranges[-1:], (first, self._last_out_seq, seq_offset, ts_offset, ssrc)]
        self._batch = None
        self._batch_newest = None

    def lookup(self, out_seq: int) -> Sent | None:
        """What was sent as `out_seq`, if it is still remembered (for retransmission)."""
        if not self._history:
            return None
        slot = out_seq % self._history
        if self._sent_seq[slot] == out_seq:
            return Sent(out_seq, self._sent_orig[slot], self._sent_offset[slot], self._sent_ssrc[slot])
        ranges = self._ranges
        newest = self._last_out_seq
        if self._batch is not None and self._batch_newest is not None:
            newest = self._batch_newest()
            ranges = [*ranges, (self._batch[0], newest, *self._batch[1:])]
        if (newest - out_seq) % SEQ_MOD >= self._history:
            return None
        for first, last, seq_offset, ts_offset, ssrc in reversed(ranges):
            if (out_seq - first) % SEQ_MOD <= (last - first) % SEQ_MOD:
                return Sent(out_seq, (out_seq - seq_offset) % SEQ_MOD, ts_offset, ssrc)
        return None

    def may_resend(self, out_seq: int, now: float) -> bool:
        """True (and noted) unless `out_seq` was resent less than RESEND_INTERVAL ago."""
        if not self._history:
            return False
        slot = out_seq % self._history
        if self._resent_seq[slot] == out_seq and now - self._resent_at[slot] < RESEND_INTERVAL:
            return False
        self._resent_seq[slot] = out_seq
        self._resent_at[slot] = now
        return True

    def to_subscriber_timestamp(self, timestamp: int) -> int:
        return (timestamp + self._ts_offset) % TS_MOD
