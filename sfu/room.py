"""A Room: participants, their publications, who receives what, and the events others follow."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sfu.interfaces import RoomListener
from sfu.participant import Participant
from sfu.publication import Publication
from sfu.selection import AudioGate, RoomVideos, VideoCandidate
from sfu.speakers import SpeakerDetector
from sfu.subscription import Subscription

log = logging.getLogger("convene.sfu.room")


class RoomFull(Exception):
    pass


@dataclass(frozen=True)
class PublisherCensus:
    publishers: frozenset[str]  # participants publishing anything
    voices: int  # audio publications


class Room:
    def __init__(self, name: str, captions: bool = True, max_participants: int = 100,
                 speaker_interval: float = 0.3, loudest_audio: int = 3, meeting_id: str = "") -> None:
        self.name = name
        # The occasion this room object serves: a room name is reused, a meeting id never is.
        self.meeting_id = meeting_id
        self.captions = captions
        self.max_participants = max_participants
        self.created_at = time.time()
        self.empty_since: float | None = time.monotonic()
        self.participants: dict[str, Participant] = {}
        self._listeners: list[RoomListener] = []
        self._speakers = SpeakerDetector()
        self._speaker_interval = speaker_interval
        self._speaker_task: asyncio.Task[None] | None = None
        self.audio_gate = AudioGate(max_open=loudest_audio, on_change=self._audio_gate_changed)
        self.speaker_history: list[str] = []  # most recent speaker first
        self._join_order: dict[str, int] = {}
        # Last-N's ranking of the room's videos, kept until a publication or the order of speakers changes: every
        # subscriber's `set_subscriptions` reselects it alone, and a new camera makes them all send one.
        self._videos: RoomVideos | None = None
        self._last_videos: RoomVideos | None = None  # the ranking before, which the next is compared with
        # Who publishes, and how many voices: kept until a publication comes or goes, for the same reason.
        self._census: PublisherCensus | None = None
        self._joins = 0
        # Whether anyone (not a hidden client like captions) ever joined: a meeting nobody attended leaves no trace.
        self.attended = False
        self.closed = False
        self._log = logging.LoggerAdapter(log, {"room": name})

    # -- listeners -------------------------------------------------------------------------------

    def add_listener(self, listener: RoomListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: RoomListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: dict[str, Any]) -> None:
        """Hands the same event object to every listener; listeners must not change it (the signaling encodes
        it once for all its sockets), and it is not changed after."""
        for listener in list(self._listeners):
            try:
                listener.on_room_event(event)
            except Exception:
                self._log.exception("listener failed on %s", event.get("type"))

    # -- membership ------------------------------------------------------------------------------

    @property
    def visible(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.hidden]

    def join(self, participant: Participant) -> None:
        if not participant.hidden and len(self.visible) >= self.max_participants:
            raise RoomFull(f"room {self.name} is full ({self.max_participants})")
        self.participants[participant.id] = participant
        self._joins += 1
        if not participant.hidden:
            self.attended = True
        self._join_order[participant.id] = self._joins
        for other in self.participants.values():
            for publication in other.publications.values():
                self._subscribe(participant, publication)
        if not participant.hidden:
            self.emit({"type": "participant_joined", "participant": participant.describe()})
        self.reselect([participant])
        self._ensure_speaker_task()

    def leave(self, participant_id: str, reason: str = "left") -> None:
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        for publication in list(participant.publications.values()):
            self._drop_publication(participant, publication)
        participant.close()
        self._speakers.forget(participant_id)
        self._join_order.pop(participant_id, None)
        if participant_id in self.speaker_history:
            self.speaker_history.remove(participant_id)
            self._videos = None
        if not participant.hidden:
            self.emit({"type": "participant_left", "participant_id": participant_id, "reason": reason})

    # -- tracks ----------------------------------------------------------------------------------

    def publish(self, participant: Participant, publication: Publication) -> None:
        participant.publications[publication.id] = publication
        self._videos = self._census = None
        publication.on_demand = self._track_demand
        if publication.kind == "audio":
            publication.audio_gate = self.audio_gate
            self._update_audio_gate()
        for other in self.participants.values():
            self._subscribe(other, publication)
        self.emit({"type": "track_published", "participant_id": participant.id,
                   "track": publication.describe(), "publication": publication})
        if publication.kind == "video":
            self.reselect()
            publication.update_demand()  # a camera nobody is to receive is released too

    def unpublish(self, participant: Participant, track_id: str) -> bool:
        publication = participant.publications.get(track_id)
        if publication is None:
            return False
        self._drop_publication(participant, publication)
        return True

    def _drop_publication(self, participant: Participant, publication: Publication) -> None:
        participant.publications.pop(publication.id, None)
        self._videos = self._census = None
        for other in self.participants.values():
            other.unsubscribe(publication.id)
        publication.close()
        self.audio_gate.forget(publication.id)
        self._update_audio_gate()
        self.emit({"type": "track_unpublished", "participant_id": participant.id, "track_id": publication.id})
        if publication.kind == "video":
            self.reselect()

    def _track_demand(self, publication: Publication, layers: list[int]) -> None:
        """Tells a publisher which layers of its video anyone receives (none: pause the camera)."""
        rids = [publication.layers[i] for i in layers if i < len(publication.layers)]
        self.emit({"type": "track_demand", "to": publication.participant_id, "track_id": publication.id,
                   "active": bool(layers), "layers": rids})

    def set_muted(self, participant: Participant, track_id: str, muted: bool, by: str | None = None) -> bool:
        publication = participant.publications.get(track_id)
        if publication is None:
            return False
        publication.set_muted(muted)
        event: dict[str, Any] = {"type": "track_muted", "participant_id": participant.id,
                                 "track_id": track_id, "muted": muted}
        if by is not None:
            event["by"] = by
        self.emit(event)
        return True

    def set_captions(self, enabled: bool) -> None:
        self.captions = enabled
        self.emit({"type": "captions", "enabled": enabled})

    def publications(self) -> list[Publication]:
        return [pub for p in self.participants.values() for pub in p.publications.values()]

    # -- who hears whom ----------------------------------------------------------------------------

    def census(self) -> PublisherCensus:
        """Who publishes and how many voices there are, counted once per change of publications."""
        census = self._census
        if census is None:
            publications = self.publications()
            census = self._census = PublisherCensus(frozenset(pub.participant_id for pub in publications),
                                                    sum(1 for pub in publications if pub.kind == "audio"))
        return census

    def _update_audio_gate(self) -> None:
        enabled = self.census().voices > self.audio_gate.max_open
        if enabled != self.audio_gate.enabled:
            self.audio_gate.set_enabled(enabled)
            for publication in self.publications():
                if publication.kind == "audio":
                    for subscription in list(publication.subscriptions):
                        self._apply_audio(subscription)

    def _subscribe(self, participant: Participant, publication: Publication) -> None:
        """An idle subscription; audio is activated here when the gate lets it through, video by last-N
        (`reselect`)."""
        subscription = participant.subscribe(publication)
        if subscription is not None and publication.kind == "audio":
            self._apply_audio(subscription)

    def _apply_audio(self, subscription: Subscription) -> None:
        """Audio takes a subscriber's slot only while among the loudest few (or for in-process listeners)."""
        if subscription.hears_everyone or self.audio_gate.is_open(subscription.publication.id):
            subscription.activate()
        else:
            subscription.deactivate()

    def _audio_gate_changed(self, publication_id: str) -> None:
        for participant in self.participants.values():
            subscription = participant.subscriptions.get(publication_id)
            if subscription is not None:
                self._apply_audio(subscription)

    # -- who receives which video ----------------------------------------------------------------

    def reselect(self, subscribers: list[Participant] | None = None) -> None:
        """Re-applies last-N for `subscribers` (default: everyone) and tells those whose set changed."""
        videos = self._videos
        if videos is None:
            candidates = [
                VideoCandidate(pub.id, pub.participant_id, pub.source, self._join_order.get(pub.participant_id, 0))
                for pub in self.publications() if pub.kind == "video"
            ]
            videos = self._videos = self._last_videos = RoomVideos(candidates, self.speaker_history,
                                                                   self._last_videos)
        census = self.census()
        publishers = census.publishers
        voices = self.audio_gate.max_open if self.audio_gate.enabled else census.voices
        paused: dict[str, frozenset[str]] = {}
        for participant in subscribers if subscribers is not None else list(self.participants.values()):
            if participant.select_videos(videos) and not participant.hidden:
                paused[participant.id] = participant.paused_videos
            self._expect(participant, len(publishers) - (participant.id in publishers), voices)
        if paused:
            # One event for everyone whose set changed (each listener reads its own): a new camera in a
            # hundred-person room changes everyone's, and an event each would reach every listener each.
            self.emit({"type": "video_paused", "paused": paused})

    @staticmethod
    def _expect(participant: Participant, others: int, voices: int) -> None:
        """Each person received takes a slot pair (their voice and camera), so a subscriber receives at most its
        last-N videos plus the loudest few voices at once. Once the room has that many others publishing, the
        subscriber's pairs are all made in one negotiation (its first, when it joins a big meeting): its later
        changes of who is heard and seen then need none (it had three or four renegotiations in a hundred-person
        join). In a room smaller than that, pairs are made as they are needed: a subscriber that receives
        everyone would otherwise carry an idle voice slot per camera."""
        bound = participant.chosen_videos + voices
        if others >= bound and participant.down is not None and participant.permissions.subscribe:
            participant.down.expect(bound)

    @staticmethod
    def apply_layers(participant: Participant, track_ids: frozenset[str] | None = None) -> None:
        """Applies the subscriber's preferred simulcast layers to `track_ids` (None: every video it may receive)."""
        prefs, subscriptions = participant.video_preferences, participant.subscriptions
        for track_id in subscriptions if track_ids is None else track_ids & subscriptions.keys():
            subscription = subscriptions[track_id]
            if subscription.publication.layers:
                subscription.set_preferred(prefs.layer_for(track_id))

    # -- speakers --------------------------------------------------------------------------------

    def _ensure_speaker_task(self) -> None:
        if self._speaker_task is None and not self.closed:
            self._speaker_task = asyncio.get_running_loop().create_task(self._run_speakers())

    async def _run_speakers(self) -> None:
        while not self.closed:
            await asyncio.sleep(self._speaker_interval)
            now = time.monotonic()
            for publication in self.publications():
                if publication.layers:
                    publication.update_rates(now)
            self.detect_speakers()

    def detect_speakers(self) -> None:
        speakers = self._speakers.update(self.publications())
        if speakers:
            ids = [s.participant_id for s in speakers]
            history = ids + [p for p in self.speaker_history if p not in ids]
            if history != self.speaker_history:
                self.speaker_history = history
                self._videos = None
                self.reselect()
        if speakers is not None:
            self.emit({"type": "active_speakers",
                       "speakers": [{"participant_id": s.participant_id, "level": s.level} for s in speakers]})

    # -- life ------------------------------------------------------------------------------------

    def describe(self, brief: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "meeting_id": self.meeting_id,
            "captions": self.captions,
            "max_participants": self.max_participants,
            "created_at": self.created_at,
            "num_participants": len(self.visible),
        }
        if not brief:
            out["participants"] = [p.describe() for p in self.visible]
        return out

    def close(self, reason: str = "room ended") -> None:
        """Idempotent: tells everyone the room ended, then closes every participant."""
        if self.closed:
            return
        self.emit({"type": "room_ended", "reason": reason})
        self.closed = True
        for participant_id in list(self.participants):
            self.leave(participant_id, reason=reason)
        self._listeners.clear()
        if self._speaker_task is not None:
            self._speaker_task.cancel()
            self._speaker_task = None
