from datetime import timedelta

import pytest

from community.errors import DomainError, NotFound
from moderation import selectors, services
from moderation.models import AuditEntry, QueueItem
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import CRISIS, FLAGGED, HELD, ORDINARY, item_for, post

pytestmark = pytest.mark.django_db


def test_the_queue_is_ordered_by_priority_then_age(group, member, facilitator, moderator):
    flagged = item_for(post(group, member, FLAGGED))
    report = services.report_message(post(group, member), reporter=facilitator, category="spam")
    held = item_for(post(group, member, HELD))
    crisis = item_for(post(group, member, CRISIS))
    older_flag = item_for(post(group, facilitator, FLAGGED))
    QueueItem.objects.filter(pk=older_flag.pk).update(
        created_at=flagged.created_at - timedelta(minutes=5)
    )

    order = list(selectors.queue(actor=moderator).values_list("pk", flat=True))

    report_item = QueueItem.objects.get(report=report)
    assert order == [crisis.pk, held.pk, report_item.pk, older_flag.pk, flagged.pk]


def test_the_queue_filters_by_group_kind_status_and_assignee(group, member, moderator):
    other = make_group()
    someone = make_member()
    make_membership(other, someone)
    here = item_for(post(group, member, FLAGGED))
    there = item_for(post(other, someone, HELD))
    services.claim_item(there, moderator=moderator)

    assert list(selectors.queue(actor=moderator, group=group)) == [here]
    assert list(selectors.queue(actor=moderator, kind="held")) == [there]
    assert list(selectors.queue(actor=moderator, status="open")) == [here]
    assert list(selectors.queue(actor=moderator, assignee=moderator)) == [there]


def test_a_facilitator_sees_only_their_groups_items_and_members_see_nothing(
    group, member, facilitator, moderator
):
    other = make_group()
    someone = make_member()
    make_membership(other, someone)
    ours = item_for(post(group, member, FLAGGED))
    theirs = item_for(post(other, someone, FLAGGED))

    assert list(selectors.queue(actor=facilitator)) == [ours]
    assert set(selectors.queue(actor=moderator)) == {ours, theirs}
    assert list(selectors.queue(actor=member)) == []
    with pytest.raises(NotFound):
        selectors.get_item(theirs.pk, actor=facilitator)
    with pytest.raises(DomainError):
        services.claim_item(theirs, moderator=facilitator)
    with pytest.raises(DomainError):
        selectors.item_context(theirs, actor=facilitator)
    assert QueueItem.objects.get(pk=theirs.pk).status == "open"


def test_claiming_an_item_takes_it_and_a_second_moderator_is_refused(group, member, moderator):
    item = item_for(post(group, member, FLAGGED))
    services.claim_item(item, moderator=moderator)
    item.refresh_from_db()
    assert (item.status, item.assignee_id) == ("claimed", moderator.pk)

    other = make_member(is_staff=True)
    with pytest.raises(DomainError) as error:
        services.claim_item(item, moderator=other)
    assert error.value.code == "already_claimed"
    item.refresh_from_db()
    assert item.assignee_id == moderator.pk


def test_a_released_item_can_be_claimed_by_someone_else(group, member, moderator):
    item = item_for(post(group, member, FLAGGED))
    services.claim_item(item, moderator=moderator)
    services.release_item(item, moderator=moderator)
    other = make_member(is_staff=True)
    assert services.claim_item(item, moderator=other).assignee_id == other.pk


def test_each_item_gets_its_kinds_service_time(group, member, settings):
    settings.MODERATION_SERVICE_MINUTES = {**settings.MODERATION_SERVICE_MINUTES, "flag": 60}
    item = item_for(post(group, member, FLAGGED))
    assert item.due_at - item.created_at == timedelta(minutes=60)


def test_item_context_shows_messages_around_it_and_writes_a_viewed_row(
    group, member, facilitator, moderator
):
    before = [post(group, facilitator, f"Earlier thought {n}.") for n in range(4)]
    message = post(group, member, FLAGGED)
    after = [post(group, facilitator, ORDINARY) for _ in range(4)]
    item = item_for(message)

    context = selectors.item_context(item, actor=moderator)

    seqs = [m["seq"] for m in context["messages"]]
    assert seqs == list(range(before[1].seq, after[2].seq + 1))
    assert [m["is_subject"] for m in context["messages"]].count(True) == 1
    assert "hide" in context["actions"]
    viewed = AuditEntry.objects.get(action="viewed")
    assert (viewed.actor_id, viewed.target_type, viewed.target_id) == (
        moderator.pk,
        "queue_item",
        item.pk,
    )


def test_item_context_includes_the_members_recent_history(group, member, moderator):
    first = services.claim_item(item_for(post(group, member, FLAGGED)), moderator=moderator)
    services.warn_member(first, actor=moderator, reason="Please keep it gentle.")
    second = item_for(post(group, member, FLAGGED))

    context = selectors.item_context(second, actor=moderator)

    assert [h["kind"] for h in context["history"]] == ["warn"]
