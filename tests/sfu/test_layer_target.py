"""The target layer follows the subscriber's bandwidth estimate (REMB) with hysteresis."""

from __future__ import annotations

from sfu.local import LocalDown
from sfu.publication import Codec, Publication


class KeyframeRequests:
    """The publisher's side (the outermost edge): records what was asked of it."""

    def __init__(self) -> None:
        self.asked: list[int | None] = []

    def request_keyframe(self, ssrc: int | None = None) -> None:
        self.asked.append(ssrc)


def test_target_drops_only_well_below_and_rises_with_headroom() -> None:
    publication = Publication("TR_cam", "PA_alice", "camera", KeyframeRequests(), {96: Codec("video/VP8", 90000)},
                              pli_throttle=0.0, layers=["l", "m", "h"])
    publication.layer_bitrate = [150_000.0, 300_000.0, 600_000.0]
    subscription = publication.subscribe(LocalDown(lambda *args: None), "PA_bob")
    assert subscription.target == 2
    subscription.on_remb(530_000)  # a browser's early estimate, a little under what it receives
    assert subscription.target == 2
    subscription.on_remb(400_000)  # real shortage: one layer down
    assert subscription.target == 1
    subscription.on_remb(560_000)  # not enough room for the high layer yet
    assert subscription.target == 1
    subscription.on_remb(720_000)
    assert subscription.target == 2
    subscription.on_remb(100_000)
    assert subscription.target == 0
    subscription.set_preferred("mid")
    subscription.on_remb(5_000_000)
    assert subscription.target == 1
