"""The daily digest: each moderator hears once a day about the open items in their scope."""

import pytest

from community.models import Notification
from moderation import services
from moderation.tasks import task_send_moderation_digest
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db


def test_the_digest_counts_open_items_per_moderators_scope_and_is_safe_to_run_twice(
    group, member, facilitator, moderator
):
    other = make_group(name="Morning circle")
    rowan = make_member(display_name="Rowan")
    make_membership(other, rowan)
    post(group, member, FLAGGED)
    post(other, rowan, FLAGGED)
    closed = item_for(post(group, member, "Honestly, nobody likes you, truly."))
    services.claim_item(closed, moderator=moderator)
    services.resolve_item(closed, actor=moderator, reason="Looked fine in context.")

    assert task_send_moderation_digest.apply().get() == 2
    assert task_send_moderation_digest.apply().get() == 2  # the same notifications, nothing new

    staff_note = Notification.objects.get(user=moderator, kind="moderator_alert")
    assert "2 items are waiting" in staff_note.title
    maple_note = Notification.objects.get(user=facilitator, kind="moderator_alert")
    assert "1 item is waiting" in maple_note.title
    assert "Automatic flag: 1" in maple_note.body
    assert FLAGGED not in staff_note.body + maple_note.body
    assert staff_note.dedupe_key.startswith("digest:") and staff_note.dedupe_key.endswith(
        f":{moderator.pk}"
    )
    assert not Notification.objects.filter(user__in=[member, rowan]).exists()


def test_nobody_is_told_when_nothing_is_open(group, facilitator, moderator):
    assert services.send_moderation_digest() == 0
    assert not Notification.objects.filter(kind="moderator_alert").exists()
