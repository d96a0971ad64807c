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


def ranked_room(rng: random.Random) -> tuple[list[str], list[VideoCandidate], list[str], RoomVideos]:
    """A room of up to 30 people with a camera, a screen, both or neither each, some of them recent speakers, and
    its ranking (that follows another, so the next one may be compared with it)."""
    people = [f"P{i}" for i in range(rng.randint(1, 30))]
    candidates = [VideoCandidate(f"TR_{p}_{s}", p, s, order)
                  for order, p in enumerate(people) for s in rng.sample(["camera", "screen"], rng.randint(0, 2))]
    history = rng.sample(people, rng.randint(0, len(people)))
    return people, candidates, history, RoomVideos(candidates, history, RoomVideos([], []))


def test_a_ranking_that_appends_a_camera_keeps_every_full_last_n_and_says_so_only_then() -> None:
    """A subscriber whose last-N the ranking before filled keeps it when `chosen_unchanged` says so (the join of a
    big meeting skips its choice for everyone else); any other change of the ranking is not taken for an append."""
    rng = random.Random(11)
    appends = kept = 0
    for _ in range(400):
        people, candidates, history, before = ranked_room(rng)
        newcomer = f"P{len(people)}"
        source = rng.choice(["camera", "camera", "screen"])
        after = RoomVideos(candidates + [VideoCandidate(f"TR_{newcomer}_{source}", newcomer, source, len(people))],
                           rng.choice([history, [newcomer, *history]]), before)
        assert after.generation == before.generation + 1
        if after.appended is not None:
            appends += 1
            assert after.appended.participant_id == newcomer
            assert [c.track_id for c in after._order[:-1]] == [c.track_id for c in before._order]
        me = rng.choice(people)
        prefs = VideoPreferences(max_video=rng.randint(0, 8), pinned=rng.choice([[], [candidates[0].track_id]]
                                                                                  if candidates else [[]]))
        subscribed = {c.track_id for c in candidates + [after._order[-1]] if c.participant_id != me}
        chosen = before.choose(prefs, me, subscribed)
        if after.chosen_unchanged(prefs, len(chosen), before.generation):
            kept += 1
            assert after.choose(prefs, me, subscribed) == chosen
        assert not after.chosen_unchanged(prefs, len(chosen), before.generation - 1)  # chosen from an older one
    removed = RoomVideos(candidates[1:] + [VideoCandidate("TR_new", "new", "camera", 99)], [], after)
    assert removed.appended is None or not candidates  # one gone and one come is not an append
    assert appends > 100 and kept > 50


def test_a_ranking_that_reorders_the_recent_speakers_keeps_every_last_n_that_holds_them_all() -> None:
    """A speaker change moves one of the room's videos to the front: every subscriber whose last-N took the
    reordered places whole keeps its choice, `chosen_unchanged` says so only when `choose` agrees, and a ranking
    of other videos (one gone, one come) is not taken for a reorder."""
    rng = random.Random(13)
    reorders = kept = 0
    for _ in range(400):
        people, candidates, history, before = ranked_room(rng)
        speaker = rng.choice(people)
        after = RoomVideos(candidates, [speaker, *(p for p in history if p != speaker)], before)
        assert after.appended is None and after.reordered is not None
        reorders += after.reordered > 0
        assert [c.track_id for c in after._order[after.reordered:]] == [
            c.track_id for c in before._order[after.reordered:]]
        me = rng.choice(people)
        prefs = VideoPreferences(max_video=rng.randint(0, 8),
                                 pinned=rng.choice([[], [candidates[0].track_id]] if candidates else [[]]))
        subscribed = {c.track_id for c in candidates if c.participant_id != me and rng.random() < 0.95}
        chosen = before.choose(prefs, me, subscribed)
        if after.chosen_unchanged(prefs, len(chosen), before.generation):
            kept += 1
            assert after.choose(prefs, me, subscribed) == chosen
        assert not after.chosen_unchanged(prefs, len(chosen), before.generation - 1)  # chosen from an older one
        if candidates:
            swapped = RoomVideos(candidates[1:] + [VideoCandidate("TR_new", "new", "camera", 99)], history, after)
            assert swapped.reordered is None and swapped.appended is None
    assert reorders > 100 and kept > 100
