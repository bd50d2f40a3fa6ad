import pytest

from community.errors import DomainError, NotFound
from moderation import selectors, services
from moderation.models import QueueItem, Report
from tests.factories import make_group, make_member, make_membership
from tests.moderation.conftest import post

pytestmark = pytest.mark.django_db


def test_a_member_reports_a_message_and_it_enters_the_queue(group, member, facilitator):
    message = post(group, facilitator)

    report = services.report_message(
        message, reporter=member, category="harassment", details="It felt pointed."
    )

    assert report.reported_member_id == facilitator.pk
    item = QueueItem.objects.get(report=report)
    assert (item.kind, item.status, item.group_id, item.message_id) == (
        "report",
        "open",
        group.pk,
        message.pk,
    )


def test_reporting_the_same_message_twice_makes_one_report(group, member, facilitator):
    message = post(group, facilitator)

    first = services.report_message(message, reporter=member, category="spam")
    second = services.report_message(message, reporter=member, category="other", details="again")

    assert first.pk == second.pk
    assert Report.objects.count() == 1
    assert QueueItem.objects.filter(kind="report").count() == 1


def test_reporting_a_message_you_cannot_see_is_refused_and_changes_nothing(group, member, outsider):
    message = post(group, member)
    with pytest.raises(NotFound):
        services.report_message(message, reporter=outsider, category="spam")

    other = make_group()
    make_membership(other, outsider)
    with pytest.raises(NotFound):
        services.report_message(message, reporter=outsider, category="spam")
    assert not Report.objects.exists()
    assert not QueueItem.objects.exists()


def test_a_message_from_before_you_joined_cannot_be_reported(group, member):
    message = post(group, member)
    newcomer = make_member()
    make_membership(group, newcomer)
    with pytest.raises(NotFound):
        services.report_message(message, reporter=newcomer, category="spam")


def test_an_unknown_category_is_refused(group, member, facilitator):
    message = post(group, facilitator)
    with pytest.raises(DomainError) as error:
        services.report_message(message, reporter=member, category="rude")
    assert error.value.code == "bad_category"
    assert not Report.objects.exists()


def test_a_member_can_be_reported_by_someone_in_the_same_group(group, member, facilitator):
    report = services.report_member(facilitator, reporter=member, group=group, category="worried")
    item = QueueItem.objects.get(report=report)
    assert item.member_id == facilitator.pk
    assert item.message_id is None


def test_the_reporter_sees_how_their_report_ended_without_private_details(
    group, member, facilitator, moderator
):
    message = post(group, facilitator)
    report = services.report_message(message, reporter=member, category="spam")
    item = services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    services.dismiss_report(item, actor=moderator, reason="Reads as friendly to me.")

    (mine,) = selectors.my_reports(member)
    assert mine["outcome"] == "no_action"
    assert set(mine) == {"id", "category", "created", "outcome", "outcome_label"}
    assert selectors.my_reports(facilitator) == []
    from community.models import Notification

    note = Notification.objects.get(user=member, kind="report_outcome")
    assert "no action" in note.title
    assert "Reads as friendly" not in note.title + note.body


def test_the_reported_person_never_learns_who_reported_them(group, member, facilitator, moderator):
    message = post(group, facilitator)
    report = services.report_message(message, reporter=member, category="harassment")
    item = services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    services.hide_message(item, actor=moderator, reason="It could hurt someone in the group.")
    from community.models import Notification

    (note,) = Notification.objects.filter(user=facilitator)
    assert "Willow" not in note.title + note.body
    assert "It could hurt someone" in note.body
