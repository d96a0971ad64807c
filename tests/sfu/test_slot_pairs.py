"""Slot pairs (lip sync): a subscriber connection's audio slot i and video slot i share one a=msid stream, and a
person's voice and camera go on the two slots of one pair, whatever order they come in and however slots were
handed on before. A browser synchronises only the tracks of one stream, so this is what lets Chromium play a
person's voice and camera together (tests/browser/test_lipsync.py measures it)."""

from __future__ import annotations

import re

from sfu.webrtc import Subscriber


def streams_by_mid(sdp: str) -> dict[str, str]:
    """mid -> the a=msid stream id of its m-line, from an offer."""
    result: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        msid = re.search(r"^a=msid:(\S+) ", section, re.M)
        assert mid and msid, section
        result[mid.group(1)] = msid.group(1)
    return result


async def stream_of(subscriber: Subscriber) -> dict[tuple[str, str], str]:
    """(participant id, source) -> the stream its slot belongs to, as the client would be offered now."""
    sdp, table = await subscriber.create_offer()
    streams = streams_by_mid(sdp)
    return {(info["participant_id"], info["source"]): streams[mid] for mid, info in table.items()}


async def test_a_persons_voice_and_camera_share_a_stream_in_any_order() -> None:
    subscriber = Subscriber([], lambda: None, label="sub")
    try:
        # Cameras first (last-N), voices later, in the other order.
        subscriber.add_track("video", "TR_pc", "P", "camera")
        subscriber.add_track("video", "TR_qc", "Q", "camera")
        subscriber.add_track("audio", "TR_qm", "Q", "microphone")
        subscriber.add_track("audio", "TR_pm", "P", "microphone")
        # A screen share with its sound pairs with itself, not with the presenter's camera.
        subscriber.add_track("audio", "TR_ps", "P", "screen_audio")
        subscriber.add_track("video", "TR_pv", "P", "screen")
        streams = await stream_of(subscriber)
        assert streams[("P", "camera")] == streams[("P", "microphone")]
        assert streams[("Q", "camera")] == streams[("Q", "microphone")]
        assert streams[("P", "screen")] == streams[("P", "screen_audio")]
        assert len(set(streams.values())) == 3, streams
    finally:
        await subscriber.close()


async def test_pairs_stay_together_when_slots_are_handed_on() -> None:
    subscriber = Subscriber([], lambda: None, label="sub")
    try:
        p_mic = subscriber.add_track("audio", "TR_pm", "P", "microphone")
        p_cam = subscriber.add_track("video", "TR_pc", "P", "camera")
        subscriber.add_track("audio", "TR_qm", "Q", "microphone")
        subscriber.add_track("video", "TR_qc", "Q", "camera")
        await stream_of(subscriber)  # negotiated: the slots now carry tracks without renegotiating
        slots = len(subscriber.pc.getTransceivers())
        # P leaves; R comes, voice first (an audio gate opening), then camera (last-N): P's pair is taken.
        subscriber.remove_track(p_mic)
        subscriber.remove_track(p_cam)
        subscriber.add_track("audio", "TR_rm", "R", "microphone")
        subscriber.add_track("video", "TR_rc", "R", "camera")
        streams = await stream_of(subscriber)
        assert len(subscriber.pc.getTransceivers()) == slots  # no new slot, no renegotiation
        assert streams[("R", "camera")] == streams[("R", "microphone")]
        assert streams[("Q", "camera")] == streams[("Q", "microphone")]
        assert streams[("R", "camera")] != streams[("Q", "camera")]
    finally:
        await subscriber.close()


async def test_a_voice_whose_camera_is_on_a_later_pair_completes_that_pair() -> None:
    """Six cameras (last-N) and one voice (the loudest few): the voice goes on the sixth camera's pair."""
    subscriber = Subscriber([], lambda: None, label="sub")
    try:
        for n in range(6):
            subscriber.add_track("video", f"TR_c{n}", f"P{n}", "camera")
        subscriber.add_track("audio", "TR_m5", "P5", "microphone")
        streams = await stream_of(subscriber)
        assert streams[("P5", "camera")] == streams[("P5", "microphone")]
        # Another voice then takes an idle audio slot whose camera is there too.
        subscriber.add_track("audio", "TR_m2", "P2", "microphone")
        streams = await stream_of(subscriber)
        assert streams[("P2", "camera")] == streams[("P2", "microphone")]
    finally:
        await subscriber.close()


async def test_a_voice_without_a_camera_never_takes_someone_elses_pair() -> None:
    """Q's voice pauses (the loudest-few gate closes) and S, whose camera is not received, starts talking: S
    gets a slot of its own, and when Q talks again Q's voice goes back beside Q's camera."""
    subscriber = Subscriber([], lambda: None, label="sub")
    try:
        subscriber.add_track("video", "TR_pc", "P", "camera")
        subscriber.add_track("video", "TR_qc", "Q", "camera")
        subscriber.add_track("audio", "TR_pm", "P", "microphone")
        q_mic = subscriber.add_track("audio", "TR_qm", "Q", "microphone")
        await stream_of(subscriber)
        subscriber.remove_track(q_mic)
        s_mic = subscriber.add_track("audio", "TR_sm", "S", "microphone")
        q_mic = subscriber.add_track("audio", "TR_qm", "Q", "microphone")
        streams = await stream_of(subscriber)
        assert streams[("Q", "camera")] == streams[("Q", "microphone")]
        assert streams[("P", "camera")] == streams[("P", "microphone")]
        assert streams[("S", "microphone")] not in {streams[("P", "camera")], streams[("Q", "camera")]}
        # In a steady meeting the pairs are there: the same again renegotiates nothing.
        slots = len(subscriber.pc.getTransceivers())
        subscriber.remove_track(s_mic)
        subscriber.remove_track(q_mic)
        subscriber.add_track("audio", "TR_sm", "S", "microphone")
        subscriber.add_track("audio", "TR_qm", "Q", "microphone")
        streams = await stream_of(subscriber)
        assert len(subscriber.pc.getTransceivers()) == slots
        assert streams[("Q", "camera")] == streams[("Q", "microphone")]
    finally:
        await subscriber.close()
