"""The load tester's counting parts, without a server: loss, latency tail, talk schedule, layouts."""

from __future__ import annotations

import time

from loadtest.histogram import Histogram
from loadtest.layout import layout_named
from loadtest.ramp import RampState, StepResult
from loadtest.settings import RampPlan
from loadtest.stamp import read_stamp, stamp, strip_stamp
from loadtest.talk import TalkSchedule
from loadtest.timeline import Timeline
from loadtest.track_stats import TrackStats


def test_stamp_round_trip() -> None:
    now = time.monotonic()
    payload = stamp(b"\x10\x00vp8", now)
    assert read_stamp(payload) == now
    assert strip_stamp(payload) == b"\x10\x00vp8"
    assert read_stamp(b"\x10\x00vp8") is None


def test_loss_counts_gaps_late_packets_and_wraparound() -> None:
    stats = TrackStats("TR_a", "PA_a", "video", 0.0, Histogram())
    seqs = [65530, 65531, 65533, 65534, 0, 1, 65532, 1, 3]  # 65532 late, 1 duplicated, 2 lost
    for n, seq in enumerate(seqs):
        stats.add(seq, n * 3000, stamp(b"x", time.monotonic()), True, time.monotonic())
    assert stats.expected == 10
    assert stats.unique == 8 and stats.lost == 2
    assert stats.recovered == 1 and stats.duplicates == 1
    assert stats.latency.total == 7  # the late packet is not a latency sample
    assert stats.time_to_first_frame is not None


def test_histogram_percentiles() -> None:
    h = Histogram()
    for ms in range(1, 101):
        h.add(ms)
    assert h.percentile(50) == 50.5 and h.percentile(95) == 95.5
    h.add(2345)
    assert h.percentile(100) == 2345


def test_talk_schedule_has_at_most_n_speakers_and_pauses() -> None:
    schedule = TalkSchedule(3, seed=1, publishers_at=lambda t: 10)
    talking = [sum(schedule.talking(i, t / 50) for i in range(10)) for t in range(50 * 30)]
    assert max(talking) == 3 and min(talking) == 0
    assert len(schedule.talkers(0.0)) == 3
    alone = TalkSchedule(3, seed=1, publishers_at=lambda t: 1)
    assert alone.talkers(0.0) == {0}


def test_speaker_layout_asks_one_high_and_the_rest_low() -> None:
    request = layout_named("speaker").request({"TR_1": "PA_1", "TR_2": "PA_2", "TR_3": "PA_3"}, "PA_2")
    assert request == {"type": "set_subscriptions", "max_video": 6, "default_layer": "low",
                       "layers": {"TR_2": "high"}}
    # Someone else's camera does not change the request (no message per join).
    assert layout_named("speaker").request({"TR_1": "PA_1", "TR_2": "PA_2", "TR_3": "PA_3", "TR_4": "PA_4"},
                                           "PA_2") == request
    grid = layout_named("grid3x3").request({"TR_1": "PA_1"}, None)
    assert grid["layers"] == {} and grid["default_layer"] == "mid"
    assert layout_named("audio-only").publishes_video is False


def test_ramp_steps_up_looks_twice_at_a_break_and_reports_the_capacity() -> None:
    ramp = RampState(RampPlan(step=5, interval=10.0), maximum=20, join_rate=2.0)
    assert [ramp.target(t) for t in (0.0, 0.6, 2.0, 9.0)] == [1, 2, 5, 5]
    window = Timeline(0.0).window(0.0, 1.0)

    def step(held: bool) -> StepResult:
        return StepResult(ramp.goal, window, 0.1, 0, [] if held else ["latency"], retry=ramp.retry)

    ramp.advance(step(True), 10.0)  # 5 held
    assert ramp.goal == 10 and ramp.target(10.0) == 6
    ramp.advance(step(False), 20.0)  # 10 broke once: hold it, nobody new
    assert ramp.goal == 10 and ramp.retry and ramp.target(25.0) == 10 and not ramp.done
    ramp.advance(step(True), 30.0)  # 10 held on the second look
    assert ramp.goal == 15 and not ramp.retry
    ramp.advance(step(False), 40.0)
    ramp.advance(step(False), 50.0)  # 15 broke twice
    result = ramp.result()
    assert ramp.done and result.broke and result.capacity == 10
    assert [(s.participants, s.retry) for s in result.steps] == [(5, False), (10, False), (10, True), (15, False),
                                                                 (15, True)]
