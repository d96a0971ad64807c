"""In-process subscribers: a client of the room without a peer connection (captions, recording).

`LocalDown` is the Down of a hidden participant. For each track the room offers it, it asks its
`accept(kind, track_id, participant_id, source)` callback for a packet sink (an object with
`write_rtp(packet)` and `close()`); a track it does not want costs nothing. Sinks get the publisher's
packets as they are (no rewriting): they must not change them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sfu.interfaces import DownFeedback
from sfu.rtp import RtpPacket


class PacketSink(Protocol):
    def write_rtp(self, packet: RtpPacket) -> None: ...

    def close(self) -> None: ...


Accept = Callable[[str, str, str, str], PacketSink | None]


class LocalDownTrack:
    def __init__(self, sink: PacketSink, track_id: str) -> None:
        self.sink = sink
        self.track_id = track_id
        self.closed = False

    @property
    def ready(self) -> bool:
        return not self.closed

    def attach(self, feedback: DownFeedback) -> None:
        pass  # a local sink never loses packets or needs keyframes

    def payload_type_for(self, mime_type: str) -> int | None:
        return 0  # payload types are not rewritten for local sinks; any value maps

    def send(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None:
        self.sink.write_rtp(packet)

    def resend(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None:
        pass

    def set_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        pass

    def last_sent(self) -> tuple[int, int, float] | None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sink.close()


class LocalDown:
    # In-process listeners hear every speaker, not only the loudest few people get (see AudioGate).
    hears_everyone = True

    def __init__(self, accept: Accept, kinds: frozenset[str] = frozenset({"audio", "video"})) -> None:
        self._accept = accept
        self.kinds = kinds

    def add_track(self, kind: str, track_id: str, participant_id: str, source: str) -> LocalDownTrack | None:
        sink = self._accept(kind, track_id, participant_id, source)
        return LocalDownTrack(sink, track_id) if sink is not None else None

    def remove_track(self, track: object) -> None:
        if isinstance(track, LocalDownTrack):
            track.close()

    def expect(self, people: int) -> None:
        """No slots to make: an in-process listener takes each track as it comes."""
