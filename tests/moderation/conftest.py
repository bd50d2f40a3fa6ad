"""Helpers for the moderation tests: posting through the real chat service, and queue items."""

import uuid

import pytest

from groups import services as group_services
from moderation import services
from moderation.models import QueueItem
from tests.factories import seed_for_database_tests

FLAGGED = "Honestly, nobody likes you in this circle."
HELD = "You can call me on 07700 900123 any evening."
CRISIS = "I can't go on anymore, I just want it all to stop."
ORDINARY = "Thank you all for listening tonight."


@pytest.fixture(autouse=True)
def _seed_data(request):
    """The default rules and crisis resources as the data migrations install them, for every
    moderation test that uses the database (see ``install_seed_data``)."""
    seed_for_database_tests(request)


def post(group, author, body=ORDINARY):
    return group_services.post_message(
        group, author=author, client_id=uuid.uuid4(), body=body
    ).message


def item_for(message, kind=None):
    items = QueueItem.objects.filter(message=message)
    if kind:
        items = items.filter(kind=kind)
    return items.get()


@pytest.fixture
def claimed(moderator):
    """Claim an item as Cedar (the site moderator) and return it."""

    def claim(item, who=None):
        return services.claim_item(item, moderator=who or moderator)

    return claim
