"""Helpers for the moderation tests: posting through the real chat service, and queue items."""

import uuid

import pytest

from groups import services as group_services
from moderation import services
from moderation.models import QueueItem

FLAGGED = "Honestly, nobody likes you in this circle."
HELD = "You can call me on 07700 900123 any evening."
CRISIS = "I can't go on anymore, I just want it all to stop."
ORDINARY = "Thank you all for listening tonight."


@pytest.fixture(autouse=True)
def _default_flag_rules(request):
    """The default rules as the data migration installs them, for every test that uses the DB.

    A ``transaction=True`` test ends by emptying every table, migration data included, so
    without this the tests after one would run against no rules at all.
    """
    if request.node.get_closest_marker("django_db") is None:
        for name in ("transactional_db", "db"):
            if name in request.fixturenames:
                request.getfixturevalue(name)
                break
        else:
            return
    from django.utils import timezone

    from moderation.default_rules import install_default_rules
    from moderation.matcher import bump_rules_version
    from moderation.models import FlagRule

    install_default_rules(FlagRule, now=timezone.now())
    bump_rules_version()


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
