"""Layouts as in LiveKit's `lk load-test`: how many videos a bot shows, and at which simulcast layer.

A bot turns its layout into a `set_subscriptions` request: last-N with `max_video`, the current
speaker's video on the high layer in the speaker layout, every other tile on the layout's tile layer
(`default_layer`). The request names no other track, so it changes only when the speaker does: a bot
that listed every video sent one more request, as long as the room, each time someone joined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Layout:
    name: str
    videos: int  # how many videos the bot shows
    speaker_high: bool  # the current speaker large, on the high layer
    tile_layer: str  # the layer of every other tile

    @property
    def publishes_video(self) -> bool:
        return self.videos > 0

    def request(self, video_tracks: dict[str, str], speaker: str | None) -> dict[str, Any]:
        """The set_subscriptions message for these video tracks (track id -> publisher participant id)
        when `speaker` (a participant id, or None) talks."""
        layers = {}
        if self.speaker_high and self.tile_layer != "high":
            layers = {track_id: "high" for track_id, participant_id in sorted(video_tracks.items())
                      if participant_id == speaker}
        return {"type": "set_subscriptions", "max_video": self.videos, "default_layer": self.tile_layer,
                "layers": layers}


def layout_named(name: str) -> Layout:
    layouts = {
        "speaker": Layout("speaker", 6, True, "low"),  # 1 high + 5 low
        "grid3x3": Layout("grid3x3", 9, False, "mid"),
        "grid4x4": Layout("grid4x4", 16, False, "low"),
        "grid5x5": Layout("grid5x5", 25, False, "low"),
        "audio-only": Layout("audio-only", 0, False, "low"),
    }
    if name not in layouts:
        raise ValueError(f"unknown layout {name!r} (one of {', '.join(layouts)})")
    return layouts[name]


LAYOUT_NAMES = ("speaker", "grid3x3", "grid4x4", "grid5x5", "audio-only")
