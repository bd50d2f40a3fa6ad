"""Two moderators claiming the same item at the same moment: exactly one gets it.

Real threads with their own database connections, on PostgreSQL (SQLite serialises the whole
file, so there is no race to test there).
"""

import pytest
from django.db import connection

from community.errors import DomainError
from moderation import services
from moderation.models import AuditEntry, QueueItem
from tests.concurrency import race
from tests.factories import make_moderator
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="Needs PostgreSQL and real concurrent connections; set DATABASE_URL to run it.",
    ),
    pytest.mark.django_db(transaction=True),
]

RACES = 5


def test_two_moderators_claiming_at_once_get_one_claim(group, member):
    ash, birch = make_moderator(), make_moderator()
    for _ in range(RACES):
        item = item_for(post(group, member, FLAGGED))

        outcomes = race(
            *(
                lambda who=who, item=item: services.claim_item(
                    QueueItem.objects.get(pk=item.pk), moderator=who
                )
                for who in (ash, birch)
            )
        )

        winners = [o for o in outcomes if isinstance(o, QueueItem)]
        losers = [o for o in outcomes if isinstance(o, DomainError)]
        assert len(winners) == 1 and len(losers) == 1
        assert losers[0].code == "already_claimed"
        item.refresh_from_db()
        assert item.assignee_id == winners[0].assignee_id
        assert AuditEntry.objects.filter(action="claim", target_id=item.pk).count() == 1
