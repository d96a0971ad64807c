"""In-process subscribers (the transcriber's way into a room) get every audio packet as published,
including from speakers the loudest-three gate keeps from people."""

from __future__ import annotations

import asyncio

from sfu.local import LocalDown
from sfu.participant import Participant, Permissions
from sfu.rtp import RtpPacket
from tests.conftest import RunningServer
from tests.sfu.peers import join, make_packet, opus_payload, wait_until
from signaling.appkeys import ROOMS


class Collect:
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.closed = False

    def write_rtp(self, packet: RtpPacket) -> None:
        self.packets.append(packet)

    def close(self) -> None:
        self.closed = True


async def test_local_listener_hears_all_audio_and_no_video(server: RunningServer) -> None:
    talkers = [await join(server.url, "cap", await server.token("cap", f"t{i}")) for i in range(4)]
    sinks: dict[str, Collect] = {}

    def accept(kind: str, track_id: str, participant_id: str, source: str) -> Collect | None:
        if kind != "audio":
            return None
        sinks[participant_id] = Collect()
        return sinks[participant_id]

    room = server.app[ROOMS].get("cap")
    assert room is not None
    listener = Participant("captions", "Captions", Permissions(publish=False), down=LocalDown(accept), hidden=True)
    room.join(listener)
    try:
        mics = [(await t.publish(("audio", "audio/opus", "microphone"), ("video", "video/VP8", "camera")))[0]
                for t in talkers]
        payloads: dict[int, list[bytes]] = {n: [] for n in range(4)}
        for i in range(60):
            for n, mic in enumerate(mics):
                payload = opus_payload()
                payloads[n].append(payload)
                mic.write(make_packet(i, 960 * i, payload, audio_level=20 + n))  # four talk at once
            await asyncio.sleep(0.02)
        await wait_until(lambda: len(sinks) == 4 and all(len(s.packets) >= 50 for s in sinks.values()), 5)
        for n, talker in enumerate(talkers):
            got = [p.payload for p in sinks[talker.id].packets]
            assert got == payloads[n][: len(got)] or set(got) <= set(payloads[n])
        # The room lists nobody extra: the listener is hidden.
        assert len(room.visible) == 4
    finally:
        room.leave(listener.id)
        for t in talkers:
            await t.close()
    assert all(s.closed for s in sinks.values())
