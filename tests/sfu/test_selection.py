"""Last-N ranked once per room (`RoomVideos.choose`) picks exactly what each subscriber's own ranking
(`choose_videos` over its own candidates) picks, with and without pins, for rooms of many shapes."""

from __future__ import annotations

import random

from sfu.selection import RoomVideos, VideoCandidate, VideoPreferences, choose_videos


def test_room_ranking_chooses_what_each_subscribers_own_ranking_chooses() -> None:
    rng = random.Random(7)
    for _ in range(300):
        people = [f"P{i}" for i in range(rng.randint(1, 30))]
        candidates = []
        for order, person in enumerate(people):
            for source in rng.sample(["camera", "screen"], rng.randint(0, 2)):
                candidates.append(VideoCandidate(f"TR_{person}_{source}", person, source, rng.choice([order, 0])))
        history = rng.sample(people, rng.randint(0, len(people)))
        videos = RoomVideos(candidates, history)
        me = rng.choice(people)
        subscribed = {c.track_id for c in candidates if c.participant_id != me and rng.random() < 0.9}
        ids = [c.track_id for c in candidates]
        prefs = VideoPreferences(max_video=rng.randint(-1, 12),
                                 pinned=rng.sample(ids, min(len(ids), rng.choice([0, 0, 1, 2]))),
                                 explicit=rng.sample(ids, min(len(ids), 3)) if rng.random() < 0.1 else None)
        mine = [c for c in candidates if c.participant_id != me and c.track_id in subscribed]
        assert videos.choose(prefs, me, subscribed) == choose_videos(mine, prefs, history)
