"""A member's own page: how their reports ended, and moderation about them they can answer."""

import html

import pytest
from django.urls import reverse

from moderation import services
from moderation.models import Appeal, ModerationAction, QueueItem
from tests.factories import make_member
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db

REASON = "This could hurt people in the group."


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def warned(group, member, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    return services.warn_member(item, actor=moderator, reason=REASON)


def test_a_member_sees_the_reason_but_not_who_acted_and_can_send_a_repair_note(
    client, member, moderator, warned
):
    client.force_login(member)
    page = text(client.get(reverse("moderation:mine")))
    assert REASON in page
    assert moderator.display_name not in page

    response = client.post(
        reverse("moderation:appeal", kwargs={"pk": warned.pk}),
        {"kind": "repair", "text": "I was upset and said it badly. I'd pause first next time."},
        follow=True,
    )
    assert "A moderator will read it" in text(response)
    appeal = Appeal.objects.get(action=warned)
    assert appeal.kind == "repair"
    assert QueueItem.objects.filter(kind="appeal", appeal=appeal, status="open").exists()

    again = client.post(
        reverse("moderation:appeal", kwargs={"pk": warned.pk}),
        {"kind": "appeal", "text": "One more thing."},
        follow=True,
    )
    assert "already with the moderators" in text(again)
    assert Appeal.objects.filter(action=warned).count() == 1


def test_an_empty_note_or_someone_elses_action_changes_nothing(client, member, warned):
    client.force_login(member)
    response = client.post(
        reverse("moderation:appeal", kwargs={"pk": warned.pk}),
        {"kind": "repair", "text": "   "},
        follow=True,
    )
    assert "write a few words" in text(response)

    client.force_login(make_member())
    other = client.post(
        reverse("moderation:appeal", kwargs={"pk": warned.pk}), {"kind": "appeal", "text": "Mine?"}
    )
    assert other.status_code == 404
    assert not Appeal.objects.exists()
    assert ModerationAction.objects.count() == 1


def test_a_reporter_sees_how_their_report_ended(client, group, member, facilitator, moderator):
    message = post(group, facilitator, "Just checking in tonight.")
    report = services.report_message(message, reporter=member, category="other")
    client.force_login(member)
    assert "A moderator is looking at it." in text(client.get(reverse("moderation:mine")))

    item = services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    services.dismiss_report(item, actor=moderator, reason="Nothing against the agreement here.")
    page = text(client.get(reverse("moderation:mine")))
    assert "A moderator looked and took no action." in page
    assert "Nothing against the agreement here." not in page  # private to the moderators
