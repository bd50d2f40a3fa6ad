"""The moderators' admin: the queue first, an item in context, one-click actions with a reason,
read-only reports, actions, appeals and audit log, and scoping (staff all; a facilitator their
groups only; members nothing). Through the Django test client, as a moderator's browser would."""

from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from groups.models import Message
from moderation import services
from moderation.models import AuditEntry, ModerationAction, QueueItem
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import FLAGGED, item_for, post

pytestmark = pytest.mark.django_db

REASON = "This could hurt people in the group."
OTHER_BODY = "Honestly, nobody likes you in this other circle either."


@pytest.fixture(autouse=True)
def _mfa_for_admin_users(settings):
    settings.ADMIN_REQUIRE_MFA = True


def admin_client(client, user):
    """Signed in with a TOTP authenticator, as the MFA rule requires for the admin."""
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    return client


def change_url(item):
    return reverse("admin:moderation_queueitem_change", args=[item.pk])


def act_url(item, action):
    return reverse("admin:moderation_queueitem_act", args=[item.pk, action])


def claim_url(item):
    return reverse("admin:moderation_queueitem_claim", args=[item.pk])


@pytest.fixture
def two_groups(group, member, facilitator):
    """An item in Evening circle (Maple facilitates it) and one in another circle."""
    other = make_group(name="Morning circle")
    rowan = make_member(display_name="Rowan")
    make_membership(other, rowan)
    mine = item_for(post(group, member, FLAGGED))
    theirs = item_for(post(other, rowan, OTHER_BODY))
    return mine, theirs


def test_the_admin_index_shows_the_queue_first(client, moderator, group, member):
    item = item_for(post(group, member, FLAGGED))
    page = admin_client(client, moderator).get(reverse("admin:index")).content.decode()
    assert "The queue" in page
    assert change_url(item) in page
    assert page.index("The queue") < page.index("Flag rules")


def test_the_queue_lists_crisis_first_then_oldest_and_filters_by_kind(
    client, moderator, group, member
):
    flagged = item_for(post(group, member, FLAGGED))
    crisis = item_for(post(group, member, "I can't go on anymore, I just want it all to stop."))
    changelist = reverse("admin:moderation_queueitem_changelist")
    c = admin_client(client, moderator)
    page = c.get(changelist).content.decode()
    assert page.index(change_url(crisis)) < page.index(change_url(flagged))
    filtered = c.get(changelist, {"kind__exact": "flag"}).content.decode()
    assert change_url(flagged) in filtered and change_url(crisis) not in filtered
    assert c.get(changelist, {"status__exact": "closed"}).status_code == 200
    assert c.get(changelist, {"assignee__id__exact": moderator.pk}).status_code == 200
    assert c.get(changelist, {"group__id__exact": group.pk}).status_code == 200


def test_the_item_page_shows_the_message_in_context_and_history_and_records_the_view(
    client, moderator, group, member
):
    before = post(group, member, "First, a quiet hello.")
    item = item_for(post(group, member, FLAGGED))
    after = post(group, member, "And a thank you afterwards.")
    page = admin_client(client, moderator).get(change_url(item)).content.decode()
    for text in (before.body, FLAGGED, after.body):
        assert text in page
    assert "recent moderation history" in page
    assert "Claim this item" in page
    assert AuditEntry.objects.filter(
        action="viewed", target_type="queue_item", target_id=item.pk, actor=moderator
    ).exists()


def test_claiming_then_hiding_with_a_reason_goes_through_the_service(
    client, moderator, group, member
):
    message = post(group, member, FLAGGED)
    item = item_for(message)
    c = admin_client(client, moderator)
    assert c.post(claim_url(item)).status_code == 302
    page = c.get(change_url(item)).content.decode()
    assert 'name="reason"' in page and act_url(item, "hide") in page

    response = c.post(act_url(item, "hide"), {"reason": REASON}, follow=True)

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.hidden_at is not None
    assert ModerationAction.objects.filter(kind="hide", reason=REASON, actor=moderator).exists()
    assert AuditEntry.objects.filter(action="hide", target_id=message.pk).exists()


def test_an_action_without_a_reason_or_before_claiming_is_refused_kindly_and_changes_nothing(
    client, moderator, group, member
):
    message = post(group, member, FLAGGED)
    item = item_for(message)
    c = admin_client(client, moderator)

    response = c.post(act_url(item, "hide"), {"reason": REASON}, follow=True)
    assert "Please claim this item before acting on it" in response.content.decode()

    c.post(claim_url(item))
    response = c.post(act_url(item, "hide"), {"reason": "  "}, follow=True)
    assert "Please write a short reason" in response.content.decode()

    response = c.post(act_url(item, "mute"), {"reason": REASON}, follow=True)
    assert "Please choose how long the mute lasts" in response.content.decode()

    message.refresh_from_db()
    assert message.hidden_at is None
    assert not ModerationAction.objects.exists()
    assert QueueItem.objects.get(pk=item.pk).status == "claimed"


def test_a_second_moderator_cannot_claim_an_item_someone_holds(client, moderator, group, member):
    from tests.factories import make_moderator

    item = item_for(post(group, member, FLAGGED))
    services.claim_item(item, moderator=make_moderator())
    response = admin_client(client, moderator).post(claim_url(item), follow=True)
    assert "Another moderator is already looking after this item." in response.content.decode()
    assert QueueItem.objects.get(pk=item.pk).assignee != moderator


def test_a_mute_from_the_admin_takes_its_duration(client, moderator, group, member):
    item = item_for(post(group, member, FLAGGED))
    c = admin_client(client, moderator)
    c.post(claim_url(item))
    c.post(act_url(item, "mute"), {"reason": REASON, "duration": "60"})
    action = ModerationAction.objects.get(kind="mute")
    assert action.ends_at is not None


def test_admin_actions_leave_no_message_body_in_django_log_entries(
    client, moderator, group, member
):
    item = item_for(post(group, member, FLAGGED))
    c = admin_client(client, moderator)
    c.post(claim_url(item))
    c.post(act_url(item, "hide"), {"reason": REASON})

    entries = list(LogEntry.objects.all())
    assert entries, "the admin action is recorded in Django's admin history"
    for entry in entries:
        assert FLAGGED not in entry.object_repr
        assert FLAGGED not in str(entry.change_message)
    assert str(Message.objects.get(body=FLAGGED)) != FLAGGED


def test_the_audit_log_is_read_only_in_the_admin(client, moderator, group, member):
    item = item_for(post(group, member, FLAGGED))
    services.claim_item(item, moderator=moderator)
    entry = AuditEntry.objects.first()
    c = admin_client(client, moderator)
    changelist = reverse("admin:moderation_auditentry_changelist")
    page = c.get(changelist)
    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode()  # no bulk actions, no bulk delete
    assert c.get(reverse("admin:moderation_auditentry_add")).status_code == 403
    assert c.get(reverse("admin:moderation_auditentry_delete", args=[entry.pk])).status_code == 403
    detail = c.get(reverse("admin:moderation_auditentry_change", args=[entry.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    c.post(
        reverse("admin:moderation_auditentry_change", args=[entry.pk]),
        {"action": "tampered", "reason": "x"},
    )
    entry.refresh_from_db()
    assert entry.action == "claim"


def test_reports_actions_and_appeals_are_visible_but_read_only(client, moderator, group, member):
    c = admin_client(client, moderator)
    for name in ("report", "moderationaction", "appeal"):
        assert c.get(reverse(f"admin:moderation_{name}_changelist")).status_code == 200
        assert c.get(reverse(f"admin:moderation_{name}_add")).status_code == 403


# --- Who may see what ---------------------------------------------------------------------------


def test_a_facilitator_sees_and_acts_on_only_their_groups_items(client, facilitator, two_groups):
    mine, theirs = two_groups
    c = admin_client(client, facilitator)

    page = c.get(reverse("admin:moderation_queueitem_changelist")).content.decode()
    assert change_url(mine) in page and change_url(theirs) not in page
    assert "Morning circle" not in page  # not even in the group filter
    assert OTHER_BODY not in c.get(reverse("admin:index")).content.decode()

    assert c.get(change_url(theirs)).status_code == 404
    assert c.post(claim_url(theirs)).status_code == 404
    assert c.post(act_url(theirs, "hide"), {"reason": REASON}).status_code == 404
    assert QueueItem.objects.get(pk=theirs.pk).status == "open"
    assert not AuditEntry.objects.filter(target_id=theirs.pk, actor=facilitator).exists()

    assert c.get(change_url(mine)).status_code == 200
    assert c.post(claim_url(mine)).status_code == 302
    assert c.post(act_url(mine, "hide"), {"reason": REASON}).status_code == 302
    assert mine.message.__class__.objects.get(pk=mine.message_id).hidden_at is not None


def test_a_facilitator_cannot_read_another_groups_reports_or_actions(
    client, facilitator, moderator, two_groups
):
    _mine, theirs = two_groups
    report = services.report_message(
        theirs.message,
        reporter=make_membership(
            theirs.group, make_member(), joined_at=timezone.now() - timedelta(days=1)
        ).user,
        category="harassment",
        details="Synthetic detail about the other circle.",
    )
    services.claim_item(theirs, moderator=moderator)
    action = services.warn_member(theirs, actor=moderator, reason="A gentle note for Rowan.")
    c = admin_client(client, facilitator)

    reports = c.get(reverse("admin:moderation_report_changelist")).content.decode()
    assert "Synthetic detail" not in reports
    assert c.get(reverse("admin:moderation_report_change", args=[report.pk])).status_code == 404
    actions = c.get(reverse("admin:moderation_moderationaction_changelist")).content.decode()
    assert "A gentle note for Rowan." not in actions
    assert (
        c.get(reverse("admin:moderation_moderationaction_change", args=[action.pk])).status_code
        == 404
    )
    audit = c.get(reverse("admin:moderation_auditentry_changelist")).content.decode()
    assert "A gentle note for Rowan." not in audit
    # Flag rules apply to every group: site moderators only.
    assert c.get(reverse("admin:moderation_flagrule_changelist")).status_code == 403


def test_a_facilitator_without_a_second_factor_is_sent_to_set_one_up(client, facilitator):
    client.force_login(facilitator)
    response = client.get(reverse("admin:index"), follow=True)
    assert reverse("mfa_activate_totp") in [url for url, _status in response.redirect_chain]


def test_members_and_former_facilitators_have_no_admin_access(client, member, group, facilitator):
    from groups.models import Membership

    item = item_for(post(group, member, FLAGGED))
    c = admin_client(client, member)
    assert c.get(reverse("admin:index")).status_code == 302
    assert c.get(change_url(item)).status_code == 302
    assert c.post(claim_url(item)).status_code == 302
    assert c.get(reverse("admin:login")).status_code == 403

    Membership.objects.filter(user=facilitator).update(status="left")
    c = admin_client(client, facilitator)
    assert c.get(reverse("admin:moderation_queueitem_changelist")).status_code == 302
    assert QueueItem.objects.get(pk=item.pk).status == "open"
