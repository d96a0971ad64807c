"""A room event's JSON text is made once for all the sockets that send it, and is always the event's own."""

from __future__ import annotations

import json

from signaling.event_text import EventText


def test_one_text_per_event_without_in_process_fields() -> None:
    text = EventText()
    published = {"type": "track_published", "participant_id": "PA_1", "track": {"id": "TR_1"},
                 "publication": object()}
    first = text(published)
    assert json.loads(first) == {"type": "track_published", "participant_id": "PA_1", "track": {"id": "TR_1"}}
    assert text(published) is first  # the second socket gets the same string, not a new encoding
    # An event emitted while another is being delivered (a listener's reaction) is its own text, and the
    # outer event's text is right again afterwards.
    joined = {"type": "participant_joined", "participant": {"id": "PA_2"}}
    assert json.loads(text(joined)) == joined
    assert json.loads(text(published))["track"] == {"id": "TR_1"}
    # An equal event that is another object is encoded on its own (identity, not equality, is the key).
    again = dict(joined)
    assert text(again) == text(joined) and json.loads(text(again)) == joined
