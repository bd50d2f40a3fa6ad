import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from groups.models import Message
from moderation import selectors, services
from moderation.models import (
    Appeal,
    AppendOnlyError,
    AuditEntry,
    ModerationAction,
    QueueItem,
    Report,
)
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import FLAGGED, HELD, item_for, post

pytestmark = pytest.mark.django_db

SECRET = "My counsellor said the new medication helps"


def test_every_action_and_view_writes_an_audit_row_with_time_actor_target_reason(
    group, member, moderator
):
    message = post(group, member, FLAGGED)
    item = services.claim_item(item_for(message), moderator=moderator)
    selectors.item_context(item, actor=moderator)
    services.hide_message(item, actor=moderator, reason="Unkind to another member.")

    rows = list(AuditEntry.objects.filter(actor=moderator).order_by("id"))
    assert [r.action for r in rows] == ["claim", "viewed", "hide"]
    hide = rows[-1]
    assert (hide.target_type, hide.target_id, hide.reason, hide.result) == (
        "message",
        message.pk,
        "Unkind to another member.",
        "ok",
    )
    assert hide.created_at.utcoffset().total_seconds() == 0


def test_the_audit_log_cannot_be_changed_or_deleted(group, member, moderator):
    item = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    entry = AuditEntry.objects.get(action="claim")
    entry.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).reason == ""
    assert item.pk


def test_no_message_body_report_detail_or_appeal_text_lands_in_the_audit_log(
    group, member, facilitator, moderator
):
    message = post(group, member, f"{SECRET}. {FLAGGED}")
    report = services.report_message(
        message, reporter=facilitator, category="worried", details=SECRET
    )
    item = services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    selectors.item_context(item, actor=moderator)
    warning = services.warn_member(item, actor=moderator, reason="Please be gentle.")
    services.submit_appeal(warning, member=member, text=SECRET)
    held = post(group, member, f"{SECRET} {HELD}")
    services.claim_item(item_for(held, "held"), moderator=moderator)

    for row in AuditEntry.objects.values():
        assert not any(SECRET in str(value) for value in row.values()), row


def test_str_of_every_moderation_model_and_of_a_message_never_holds_its_text(
    group, member, facilitator, moderator
):
    message = post(group, member, f"{SECRET}. {FLAGGED}")
    report = services.report_message(
        message, reporter=facilitator, category="other", details=SECRET
    )
    item = services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    warning = services.warn_member(item, actor=moderator, reason=SECRET)
    appeal = services.submit_appeal(warning, member=member, text=SECRET)
    objects = [
        Message.objects.get(pk=message.pk),
        Report.objects.get(),
        *QueueItem.objects.all(),
        ModerationAction.objects.get(),
        Appeal.objects.get(pk=appeal.pk),
        *AuditEntry.objects.all(),
    ]
    for obj in objects:
        assert SECRET not in str(obj)
        assert "counsellor" not in repr(obj)


def test_an_admin_log_entry_for_a_message_holds_no_body(group, member, moderator):
    message = post(group, member, SECRET)
    LogEntry.objects.log_actions(
        user_id=moderator.pk, queryset=[message], action_flag=CHANGE, change_message="[]"
    )
    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(Message))
    assert SECRET not in entry.object_repr
    assert SECRET not in str(entry)


def test_a_facilitator_reads_only_their_groups_audit_rows(group, member, facilitator, moderator):
    other = make_group()
    someone = make_member()
    make_membership(other, someone)
    services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    services.claim_item(item_for(post(other, someone, FLAGGED)), moderator=moderator)

    assert {row.group_id for row in selectors.audit_log(actor=facilitator)} == {group.pk}
    assert selectors.audit_log(actor=moderator).count() == 2
    assert selectors.audit_log(actor=member).count() == 0
