"""A room socket encodes a broadcast once per ``frame_variant`` and hands the same text to every
reader with that key (groups.consumers.chat): two readers with the same key must get the same
frame from ``frame_for_viewer``, whatever the payload."""

from hypothesis import given, settings
from hypothesis import strategies as st

from groups.models import ReactionKind
from groups.selectors import frame_for_viewer, frame_variant
from groups.topics import SensitiveTopic

PEOPLE = st.integers(min_value=1, max_value=4)
TOPICS = st.frozensets(st.sampled_from([t.value for t in SensitiveTopic]), max_size=3)


@st.composite
def payloads(draw) -> dict:
    payload = {
        "seq": draw(st.integers(min_value=1, max_value=50)),
        "author_id": draw(PEOPLE),
        "author": {"name": "Someone"},
        "body": "Synthetic words.",
        "content_warning": draw(st.sampled_from(["", "a note"])),
        "note_named": draw(st.booleans()),
        "topics": sorted(draw(TOPICS)),
        "held": draw(st.booleans()),
        "created": "2026-11-24T05:00:00+00:00",
    }
    if draw(st.booleans()):
        payload["reactors"] = {
            kind: sorted(draw(st.frozensets(PEOPLE, max_size=3))) for kind in ReactionKind.values
        }
    if draw(st.booleans()):
        payload["check_in"] = {"presence": 3}
    return payload


READERS = st.tuples(PEOPLE, TOPICS, st.frozensets(PEOPLE, max_size=3))


@settings(max_examples=400, deadline=None)
@given(payload=payloads(), first=READERS, second=READERS)
def test_readers_with_the_same_variant_get_the_same_frame(payload, first, second):
    frames, keys = [], []
    for viewer_id, soften, muted in (first, second):
        keys.append(frame_variant(payload, viewer_id=viewer_id, soften=soften, muted=muted))
        frames.append(frame_for_viewer(payload, viewer_id=viewer_id, soften=soften, muted=muted))
    if keys[0] == keys[1]:
        assert frames[0] == frames[1]


def test_in_a_quiet_room_the_author_and_everyone_else_are_two_variants():
    payload = {"seq": 1, "author_id": 1, "body": "Hello.", "topics": [], "reactors": {}}
    keys = {frame_variant(payload, viewer_id=viewer) for viewer in range(1, 13)}
    assert len(keys) == 2
