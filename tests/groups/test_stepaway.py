"""Stepping away: the room page carries everything the grounding screen needs (no network),
and the presence store keeps "taking a break" per socket. The socket side is in
test_boundaries_socket.py."""

import re
from pathlib import Path

import pytest

from groups import services
from groups.models import Membership
from groups.services.presence import presence_snapshot

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db


def test_the_room_page_carries_the_grounding_screen_hidden_until_needed(client, group, member):
    client.force_login(member)
    html = client.get("/groups/evening-circle/room/").content.decode()
    assert re.search(r'<section id="room-grounding"[^>]*\bhidden>', html)
    assert '<h1 id="room-grounding-heading" tabindex="-1">Taking a break</h1>' in html
    assert 'id="room-breath-text"' in html  # the pacer's text alternative
    assert html.count("things you can") + html.count("thing you can") == 5
    for element_id in ("room-step-away", "room-back", "room-suggest-add", "room-suggest-send"):
        assert f'id="{element_id}"' in html
    assert "js/room-stepaway.js" in html
    assert 'data-away-divider="New since you stepped away"' in html


def test_the_grounding_screen_needs_no_network_and_respects_reduced_motion():
    script = (ROOT / "static/js/room-stepaway.js").read_text()
    assert "fetch(" not in script
    assert "XMLHttpRequest" not in script
    css = (ROOT / "static/css/site.css").read_text()
    reduced = re.search(
        r"@media \(prefers-reduced-motion: reduce\) \{ \.room-breath-circle \{([^}]*)\}", css
    )
    assert reduced and "animation: none" in reduced.group(1)


def test_a_member_is_away_while_any_of_their_sockets_is(group, member):
    membership = Membership.objects.select_related("user").get(user=member)
    services.enter_room(membership, connection_id="tab-1")
    services.enter_room(membership, connection_id="tab-2")
    services.set_away(membership, connection_id="tab-1", away=True)
    assert presence_snapshot(group.pk) == [{"name": "Willow", "listening": False, "away": True}]

    # A refresh without the away flag (the other tab) doesn't clear it; the away tab's does.
    services.refresh_presence(membership, connection_id="tab-2", announce=False)
    assert presence_snapshot(group.pk)[0]["away"] is True
    services.refresh_presence(membership, connection_id="tab-1", announce=False, away=False)
    assert presence_snapshot(group.pk)[0]["away"] is False
    services.leave_room(group.pk, connection_id="tab-1")
    services.leave_room(group.pk, connection_id="tab-2")
