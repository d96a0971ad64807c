"""The small interfaces the room logic knows (after Galène's Up/UpTrack/Down/DownTrack).

The WebRTC code (sfu/webrtc.py) implements them for browsers and bots; the transcriber implements a
DownTrack of its own. Rooms never see a peer connection.
"""

from __future__ import annotations

from typing import Protocol

from sfu.rtp import RtpPacket


class UpTrack(Protocol):
    """The source side of a publication: where keyframes and bitrate limits are asked for."""

    def request_keyframe(self, ssrc: int | None = None) -> None:
        """Asks for a keyframe on the stream `ssrc` (a simulcast layer), or the only stream."""
        ...


class DownTrack(Protocol):
    """One outgoing track to one subscriber. `send` must be cheap: it runs once per packet."""

    @property
    def ready(self) -> bool:
        """False until the subscriber can receive (negotiated, connected): nothing is sent before. When it turns
        true the track calls its feedback's `on_ready`."""
        ...

    def attach(self, feedback: "DownFeedback") -> None: ...

    def send(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None: ...

    def resend(self, packet: RtpPacket, payload_type: int, seq: int, timestamp: int) -> None: ...

    def set_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None: ...

    def payload_type_for(self, mime_type: str) -> int | None: ...

    def last_sent(self) -> tuple[int, int, float] | None:
        """(sequence number, timestamp, monotonic time) last sent on this track's SSRC by anyone."""
        ...

    def close(self) -> None: ...


class DownFeedback(Protocol):
    """What a subscriber reports back (RTCP), delivered by the DownTrack to its subscription."""

    def on_nack(self, sequence_numbers: list[int]) -> None: ...

    def on_keyframe_request(self) -> None: ...

    def on_remb(self, bitrate: int) -> None: ...

    def on_ready(self) -> None:
        """The track became ready (the subscriber answered and connected)."""
        ...


class Down(Protocol):
    """A participant's receiving side. It holds a DownTrack (a slot: one m-line of a peer connection) only
    for the subscriptions that are active; a slot given back carries the next track of its kind."""

    kinds: frozenset[str]  # what it receives at all ("audio", "video")

    def add_track(self, kind: str, track_id: str, participant_id: str, source: str) -> DownTrack | None:
        """A slot for this publication, or None when this receiver does not take it."""
        ...

    def remove_track(self, track: DownTrack) -> None:
        """Gives the slot back (idle until the next add_track of its kind)."""
        ...

    def expect(self, people: int) -> None:
        """At most `people` are received at once for now: slots for them may be made ahead, in one negotiation,
        so that who they carry later changes without another (a hint; a receiver without slots ignores it)."""
        ...


class RoomListener(Protocol):
    """Anyone who follows a room's events: signaling sessions, the transcriber."""

    def on_room_event(self, event: dict[str, object]) -> None: ...
