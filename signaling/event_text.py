"""The JSON text of a room event, encoded once for every signaling socket that sends it as it is."""

from __future__ import annotations

import json
from typing import Any

# Fields a room event carries for in-process listeners only (the Publication object itself).
IN_PROCESS_ONLY = frozenset({"publication"})


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class EventText:
    """A room hands one event object to each of its listeners in turn (`Room.emit`; they must not change it), so
    the text of the event being delivered is kept: in a hundred-person room each `participant_joined` and
    `track_published` was encoded a hundred times, once per socket. The event is held while it is the latest, so
    its identity cannot be taken by another object meanwhile; an event emitted inside another's delivery only
    costs the outer one a second encoding."""

    def __init__(self) -> None:
        self._event: dict[str, Any] | None = None
        self._text = ""

    def __call__(self, event: dict[str, Any]) -> str:
        if event is not self._event:
            wire = {k: v for k, v in event.items() if k not in IN_PROCESS_ONLY}
            self._text = encode(wire)
            self._event = event
        return self._text
