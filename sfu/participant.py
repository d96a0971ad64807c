"""A Participant: one person (or bot) in a room, with the tracks it publishes and receives."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sfu.interfaces import Down
from sfu.publication import Publication
from sfu.selection import RoomVideos, VideoPreferences
from sfu.subscription import Subscription


@dataclass(frozen=True)
class Permissions:
    publish: bool = True
    subscribe: bool = True
    screen_share: bool = True
    moderator: bool = False


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(6)}"


class Participant:
    def __init__(self, identity: str, name: str, permissions: Permissions, down: Down | None = None,
                 hidden: bool = False, participant_id: str | None = None) -> None:
        self.id = participant_id or new_id("PA")
        self.identity = identity
        self.name = name
        self.permissions = permissions
        self.down = down
        # Hidden participants (the transcriber) receive but are not listed to others.
        self.hidden = hidden
        self.publications: dict[str, Publication] = {}
        self.subscriptions: dict[str, Subscription] = {}  # by publication id
        self.video_preferences = VideoPreferences()
        self.paused_videos: frozenset[str] = frozenset()
        self._chosen: frozenset[str] = frozenset()  # the videos last-N gives this participant now
        self._chosen_from: int | None = None  # the generation of the room's ranking they were chosen from
        # Set for a participant mirrored from another worker (it is served there, not here).
        self.pipe: object | None = None
        self.closed = False

    @property
    def chosen_videos(self) -> int:
        """How many videos last-N gives this participant now."""
        return len(self._chosen)

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "identity": self.identity,
            "name": self.name,
            "tracks": [p.describe() for p in self.publications.values()],
        }

    def subscribe(self, publication: Publication) -> Subscription | None:
        """An idle subscription (no m-line yet): the room activates it when this participant should
        receive the track (its video among the last-N, its audio among the loudest)."""
        if self.closed or self.down is None or not self.permissions.subscribe:
            return None
        if publication.id in self.subscriptions or publication.participant_id == self.id:
            return None
        if publication.kind not in self.down.kinds:
            return None
        subscription = publication.subscribe(self.down, self.id, self.video_preferences.layer_for(publication.id))
        self.subscriptions[publication.id] = subscription
        return subscription

    def unsubscribe(self, publication_id: str) -> None:
        subscription = self.subscriptions.pop(publication_id, None)
        if subscription is not None:
            subscription.close()

    def select_videos(self, videos: RoomVideos) -> bool:
        """Activates the videos of this participant's choice and idles the ones it no longer has; True if the set
        of paused videos changed. Idle ones first, so their slots carry the newly chosen without renegotiation."""
        if videos.chosen_unchanged(self.video_preferences, len(self._chosen), self._chosen_from):
            # A camera joined a full last-N (each join of a big meeting, for everyone in it): it is paused. Or a
            # recent speaker spoke again (the ranking only reordered what this last-N holds): nothing changes.
            self._chosen_from = videos.generation
            added = videos.appended
            if added is None or added.track_id not in self.subscriptions:
                return False
            self.paused_videos = self.paused_videos | {added.track_id}
            return True
        self._chosen_from = videos.generation
        chosen = videos.choose(self.video_preferences, self.id, self.subscriptions)
        for track_id in self._chosen - chosen:
            subscription = self.subscriptions.get(track_id)
            if subscription is not None:
                subscription.deactivate()
        for track_id in chosen:
            self.subscriptions[track_id].activate()
        self._chosen = frozenset(chosen)
        paused = (videos.ids & self.subscriptions.keys()) - chosen
        changed = paused != self.paused_videos
        self.paused_videos = frozenset(paused)
        return changed

    def close(self) -> None:
        """Idempotent: closes what it publishes (and so others' subscriptions to it) and receives."""
        if self.closed:
            return
        self.closed = True
        for publication in list(self.publications.values()):
            publication.close()
        self.publications.clear()
        for publication_id in list(self.subscriptions):
            self.unsubscribe(publication_id)
