"""A member's own data: an export of everything held about them (and nothing about others),
reachable only through their own signed, expiring link; erasing their account after the
password, with their messages erased or kept under "Former member"; open moderation items
keeping what they need until they close; and afterwards, a unique string the member wrote
found nowhere in any table of the database."""

import html
import threading
import uuid
from datetime import time, timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from community import data_selectors, services
from community.data_selectors import EXPORT_SECTIONS, export_link_token
from community.errors import DomainError, PermissionDenied
from community.models import AccountErasure, Block, DataExport, Mute, Notification, User
from groups import services as group_services
from groups.models import (
    CheckIn,
    Group,
    Membership,
    Message,
    SafeConnection,
    SafePersonInvite,
)
from groups.selectors.chat import message_payloads
from moderation import services as moderation_services
from moderation.models import AuditEntry, QueueItem, Report
from tests.factories import (
    PASSWORD,
    install_seed_data,
    make_group,
    make_meeting,
    make_member,
    make_membership,
)

pytestmark = pytest.mark.django_db

CANARY = "quillfeather"  # written into every place a member can write, then erased


def post(group, author, body, **extra):
    return group_services.post_message(
        group, author=author, client_id=uuid.uuid4(), body=body, **extra
    ).message


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tables_containing(text: str) -> dict[str, int]:
    """Every table of the database (Django's models, the auto-created many-to-many tables and
    anything else in the schema), every column, read raw: the tables where ``text`` occurs, and
    in how many rows. Case-insensitive."""
    text = text.lower()
    model_tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    all_tables = set(connection.introspection.table_names())
    assert model_tables <= all_tables  # the raw read below covers every model, m2m included
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(all_tables):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 -- table names come from the database itself
            rows = sum(
                1
                for row in cursor.fetchall()
                if any(text in _as_text(cell).lower() for cell in row)
            )
            if rows:
                found[table] = rows
    return found


def _as_text(cell) -> str:
    if isinstance(cell, memoryview | bytes):
        return bytes(cell).decode("utf-8", "replace")
    return str(cell)


def whole_database() -> dict[str, list]:
    """Every row of every table, for "nothing changed" checks."""
    dump = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 -- as above
            dump[table] = sorted(map(repr, cursor.fetchall()))
    return dump


def claim_and(action, item, moderator, **kwargs):
    item = moderation_services.claim_item(item, moderator=moderator)
    return action(item, actor=moderator, reason="Thank you; looked at with care.", **kwargs)


# --- Export: what it holds ----------------------------------------------------------------------


def test_an_export_holds_each_area_of_the_members_own_data(group, member, facilitator):
    other = make_group(name="Morning circle", join_policy="approval")
    meeting = make_meeting(group, actor=facilitator)
    group_services.rsvp(meeting.occurrences.first(), user=member, answer="going")
    message = post(group, member, "The garden helped today", content_warning="plants")
    group_services.toggle_reaction(group, user=member, seq=post(group, facilitator, "Hi").seq,
                                   reaction="heart")  # fmt: skip
    group_services.record_check_in(
        member, group=group, presence=4, feelings=["calm"], note="steady", audience="private"
    )
    group_services.set_content_boundaries(member, actor=member, topics=["grief"])
    group_services.join_group(other, user=member, agreement_version=1, message="May I join?")
    report = moderation_services.report_message(
        post(group, facilitator, "Something"), reporter=member, category="other", details="Hmm."
    )
    group_services.set_safe_status(member, text="Resting", hours=4)
    group_services.set_availability(
        member, windows=[{"days": [0, 1], "start": time(18), "end": time(21)}]
    )
    Mute.objects.create(user=member, muted=facilitator)
    services.notify(member, kind="meeting_changed", title="A meeting moved", body="To Friday.")

    export = services.request_data_export(member, actor=member)
    assert export.status == "ready"
    sections = export.content["sections"]
    assert set(sections) == {s.key for s in EXPORT_SECTIONS}
    assert sections["profile"][0]["email"] == "willow@example.test"
    assert sections["profile"][0]["display_name"] == "Willow"
    assert [m["group"] for m in sections["memberships"]] == ["Evening circle"]
    assert sections["messages"][0]["text"] == message.body
    assert sections["messages"][0]["content_note"] == "plants"
    assert sections["reactions"][0]["reaction"] == "heart"
    assert sections["check_ins"][0]["note"] == "steady"
    assert sections["room_preferences"][0]["topics_softened"] == "grief"
    assert sections["rsvps"][0]["answer"] == "going"
    assert sections["join_requests"][0]["your_words"] == "May I join?"
    assert sections["reports_made"][0]["your_words"] == report.details
    assert sections["safe_status"][0]["text"] == "Resting"
    assert sections["availability"][0]["days"] == "0, 1"
    assert sections["mutes_and_blocks"] == [
        {"kind": "mute", "person": "Maple", "since": sections["mutes_and_blocks"][0]["since"]}
    ]
    assert "A meeting moved" in [n["title"] for n in sections["notifications"]]


def test_an_export_leaves_out_reports_about_the_member_and_other_members_data(
    group, member, facilitator, outsider
):
    make_membership(group, outsider)
    willows = post(group, member, "My own words")
    post(group, facilitator, "Maple's own words")
    moderation_services.report_message(
        willows, reporter=facilitator, category="harassment", details="Maple's report details"
    )
    Block.objects.create(user=outsider, blocked=member)  # someone else's block: never shown
    group_services.invite_safe_person(outsider, invitee=facilitator, note="Heron to Maple")

    content = services.request_data_export(member, actor=member).content
    text = str(content)
    assert "My own words" in text
    for theirs in ("Maple's own words", "Maple's report details", "Heron to Maple", "harassment"):
        assert theirs not in text
    assert content["sections"]["reports_made"] == []
    assert content["sections"]["mutes_and_blocks"] == []
    assert "Heron" not in text


def test_a_quietly_declined_invitation_reads_not_accepted_yet_in_the_inviters_export(
    group, member, facilitator
):
    invite = group_services.invite_safe_person(member, invitee=facilitator, note="Would you?")
    group_services.decline_safe_person_invite(invite.pk, user=facilitator)
    row = services.request_data_export(member, actor=member).content["sections"][
        "safe_person_invitations"
    ][0]
    assert (row["direction"], row["status"], row["note"]) == ("sent", "pending", "Would you?")


def test_asking_for_someone_elses_export_is_refused_and_makes_nothing(member, outsider):
    with pytest.raises(PermissionDenied) as refused:
        services.request_data_export(member, actor=outsider)
    assert refused.value.code == "not_your_data"
    assert not DataExport.objects.exists()


def test_asking_twice_while_one_is_being_prepared_returns_the_same_one(member, settings):
    settings.DATA_EXPORT_INLINE_MAX_ROWS = -1  # every account counts as large: a task builds it
    first = services.request_data_export(member, actor=member)
    again = services.request_data_export(member, actor=member)
    assert first.status == "pending" and again.pk == first.pk
    assert services.build_data_export(first.pk) is True
    ready_at = DataExport.objects.get(pk=first.pk).ready_at
    assert services.build_data_export(first.pk) is False  # a second run changes nothing
    assert DataExport.objects.get(pk=first.pk).ready_at == ready_at


def test_expired_exports_are_deleted_by_the_hourly_tidy(member):
    from community.tasks import task_tidy_member_data

    export = services.request_data_export(member, actor=member)
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert task_tidy_member_data()["exports_deleted"] == 1
    assert not DataExport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_large_accounts_export_is_built_by_a_real_celery_worker_once(group, member, settings):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app
    from community.tasks import task_build_data_export

    settings.DATA_EXPORT_INLINE_MAX_ROWS = 0
    post(group, member, "One message makes this account large for the test")
    runs = threading.Semaphore(0)

    def count(sender=None, **extra):
        if getattr(sender, "name", None) == task_build_data_export.name:
            runs.release()

    app.control.purge()  # tasks other tests left in this run's broker
    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            export = services.request_data_export(member, actor=member)  # enqueued on commit
            assert export.status == "pending"
            assert runs.acquire(timeout=60)
            ready = DataExport.objects.get(pk=export.pk)
            assert ready.status == "ready"
            assert ready.expires_at - ready.ready_at == timedelta(days=7)
            task_build_data_export.delay(export_id=export.pk)  # delivered twice
            assert runs.acquire(timeout=60)
    finally:
        task_postrun.disconnect(count)
    again = DataExport.objects.get(pk=export.pk)
    assert again.ready_at == ready.ready_at
    assert again.content["sections"]["messages"][0]["text"].startswith("One message")


# --- Export: the page and the signed links -------------------------------------------------------


def test_the_my_data_page_prepares_a_copy_to_read_or_download(group, member):
    post(group, member, "Words worth keeping")
    client = signed_in(member)
    response = client.post(reverse("data_export_request"), follow=True)
    assert response.status_code == 200
    export = DataExport.objects.get(user=member)
    token = export_link_token(export)
    assert reverse("data_export_download", kwargs={"token": token}) in response.content.decode()

    download = client.get(reverse("data_export_download", kwargs={"token": token}))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert "no-store" in download["Cache-Control"]
    assert download.json()["sections"]["messages"][0]["text"] == "Words worth keeping"

    page = client.get(reverse("data_export_view", kwargs={"token": token}))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your messages" in text and "Words worth keeping" in text


def test_the_profile_page_links_to_my_data_and_sessions(member):
    text = signed_in(member).get(reverse("profile")).content.decode()
    assert reverse("my_data") in text and reverse("my_sessions") in text


def test_a_forged_link_is_refused(member):
    export = services.request_data_export(member, actor=member)
    token = export_link_token(export)
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    response = signed_in(member).get(reverse("data_export_download", kwargs={"token": forged}))
    assert response.status_code == 403
    assert "isn't valid" in html.unescape(response.content.decode())


def test_a_link_whose_export_expired_is_refused(member):
    export = services.request_data_export(member, actor=member)
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    for name in ("data_export_download", "data_export_view"):
        response = signed_in(member).get(reverse(name, kwargs={"token": export_link_token(export)}))
        assert response.status_code == 403
        assert "has expired" in response.content.decode()


def test_a_link_signed_more_than_seven_days_ago_is_refused(member):
    export = services.request_data_export(member, actor=member)
    with mock.patch(
        "django.core.signing.time.time", return_value=timezone.now().timestamp() - 8 * 86400
    ):
        old_token = export_link_token(export)
    with pytest.raises(PermissionDenied) as refused:
        data_selectors.export_from_link(old_token, viewer=member)
    assert refused.value.code == "export_expired"


def test_someone_elses_link_is_refused_while_signed_in_as_another_member(member, outsider):
    export = services.request_data_export(member, actor=member)
    url = reverse("data_export_download", kwargs={"token": export_link_token(export)})
    response = signed_in(outsider).get(url)
    assert response.status_code == 403
    assert "belongs to another account" in response.content.decode()
    assert "willow@example.test" not in response.content.decode()
    assert Client().get(url).status_code == 302  # signed out: to the sign-in page first


# --- Erasure -------------------------------------------------------------------------------------


def test_a_wrong_password_deletes_nothing(group, member, facilitator):
    post(group, member, "Still here")
    client = signed_in(member)
    client.get(reverse("my_data"))  # signed in and its session recorded before the snapshot
    before = whole_database()
    response = client.post(
        reverse("account_erase"), {"messages": "erase", "password": "not-my-password"}
    )
    assert response.status_code == 400
    assert "password isn't right" in html.unescape(response.content.decode())
    with pytest.raises(PermissionDenied):
        services.erase_account(member, password="", keep_messages=False)
    with pytest.raises(DomainError):
        services.erase_account(member, password=PASSWORD, keep_messages="yes")
    assert whole_database() == before


def test_erasing_with_messages_erased_leaves_message_removed_in_place(group, member, facilitator):
    mine = [post(group, member, f"My words {n}") for n in range(3)]
    theirs = post(group, facilitator, "Maple stays")
    group_services.toggle_reaction(group, user=member, seq=theirs.seq, reaction="heart")
    theirs.refresh_from_db()
    rev_before = theirs.rev
    client = signed_in(member)
    response = client.post(reverse("account_erase"), {"messages": "erase", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")

    assert not User.objects.filter(pk=member.pk).exists()
    assert list(Message.objects.filter(group=group).values_list("seq", flat=True)) == [1, 2, 3, 4]
    for message in Message.objects.filter(pk__in=[m.pk for m in mine]):
        assert (message.body, message.author_id) == ("", None)
        assert message.deleted_at is not None and message.rev > 0  # the room got an update
        payload = message_payloads([message])[0]
        assert payload["deleted"] and payload["author"]["name"] == "Former member"
    theirs.refresh_from_db()
    assert theirs.body == "Maple stays" and theirs.rev > rev_before  # its reactions changed
    assert not theirs.reactions.exists()
    assert client.get(reverse("profile")).status_code == 302  # signed out
    assert not Client().login(email="willow@example.test", password=PASSWORD)


def test_erasing_with_messages_kept_shows_them_as_former_member(group, member, facilitator):
    kept = post(group, member, "Something worth keeping for the group")
    card = group_services.record_check_in(
        member, group=group, presence=3, feelings=[], note="tired", audience="group"
    ).message
    assert services.erase_account(member, password=PASSWORD, keep_messages=True) is True

    kept.refresh_from_db()
    assert kept.body == "Something worth keeping for the group" and kept.author_id is None
    assert message_payloads([kept])[0]["author"]["name"] == "Former member"
    card.refresh_from_db()
    assert card.deleted_at is not None and card.body == ""  # check-ins go either way
    assert tables_containing("willow") == {}


def test_erasure_removes_login_profile_check_ins_preferences_notifications_and_connections(
    group, member, facilitator
):
    group_services.record_check_in(
        member, group=group, presence=2, feelings=["tired"], note="", audience="private"
    )
    group_services.set_content_boundaries(member, actor=member, topics=["grief"])
    services.update_preferences(
        member, actor=member, channels={}, reminder_lead_minutes=[60], quiet_start=None,
        quiet_end=None,
    )  # fmt: skip
    services.notify(member, kind="meeting_changed", title="Moved")
    invite = group_services.invite_safe_person(facilitator, invitee=member)
    connection_ = group_services.accept_safe_person_invite(invite.pk, user=member)
    post(connection_.room, facilitator, "Maple's words in the pair room")
    group_services.set_safe_status(member, text="Quiet day", hours=4)
    Block.objects.create(user=member, blocked=facilitator)

    services.erase_account(member, password=PASSWORD, keep_messages=False)

    assert not User.objects.filter(pk=member.pk).exists()
    assert not Membership.objects.filter(user_id=member.pk).exists()
    assert not CheckIn.objects.filter(user_id=member.pk).exists()
    assert not Notification.objects.filter(user_id=member.pk).exists()
    assert not SafeConnection.objects.exists() and not SafePersonInvite.objects.exists()
    assert not Block.objects.exists()
    room = Group.objects.get(pk=connection_.room_id)
    assert room.archived_at is not None  # the pair room closed, as ending a connection does
    assert room.messages.get().body == "Maple's words in the pair room"  # Maple's own words
    assert Membership.objects.get(group=group, user=facilitator).status == "active"


def test_a_waitlisted_seat_passes_on_when_the_member_leaves_by_erasure(group, member, facilitator):
    from tests.factories import fill_group

    Group.objects.filter(pk=group.pk).update(capacity=3)
    group.refresh_from_db()
    fill_group(group)
    waiting = make_member()
    group_services.join_group(group, user=waiting, agreement_version=1)
    services.erase_account(member, password=PASSWORD, keep_messages=False)
    assert group.waitlist.get(user=waiting).status == "offered"


def test_a_moderators_claimed_items_go_back_to_the_queue_when_they_erase(group, member, moderator):
    install_seed_data()
    moderation_services.report_message(
        post(group, make_membership(group, make_member()).user, "Hm"),
        reporter=member, category="other",
    )  # fmt: skip
    item = moderation_services.claim_item(QueueItem.objects.get(), moderator=moderator)
    assert services.erase_account(moderator, password=PASSWORD, keep_messages=False) is True
    item.refresh_from_db()
    assert (item.status, item.assignee_id) == ("open", None)


# --- Open moderation items keep what they need until they close ------------------------------


def test_open_moderation_items_keep_the_words_until_closed_then_they_are_erased(
    group, facilitator, moderator, django_capture_on_commit_callbacks
):
    install_seed_data()
    quill = make_member(display_name="Quillfeather", email=f"{CANARY}@example.test")
    make_membership(group, quill)
    flagged = post(group, quill, f"Honestly, nobody likes you in this circle. {CANARY}")
    flag = QueueItem.objects.get(message=flagged, kind="flag")
    report = moderation_services.report_message(
        post(group, facilitator, "An ordinary line"),
        reporter=quill, category="other", details=f"{CANARY} report words",
    )  # fmt: skip
    ordinary = post(group, quill, f"An unflagged {CANARY} line")

    with django_capture_on_commit_callbacks(execute=True):
        gone = services.erase_account(quill, password=PASSWORD, keep_messages=False)
    assert gone is False
    # The room sees both messages removed; moderators still read the flagged one's words.
    flagged.refresh_from_db(), ordinary.refresh_from_db()
    assert flagged.deleted_at is not None and CANARY in flagged.body
    assert ordinary.deleted_at is not None and ordinary.body == ""
    assert message_payloads([flagged])[0]["body"] == ""
    report.refresh_from_db()
    assert CANARY in report.details
    tombstone = User.objects.get(pk=quill.pk)
    assert not tombstone.is_active and CANARY not in tombstone.email.lower()
    assert CANARY not in tombstone.display_name.lower()
    assert not Client().login(email=f"{CANARY}@example.test", password=PASSWORD)
    assert set(tables_containing(CANARY)) == {"groups_message", "moderation_report"}

    with django_capture_on_commit_callbacks(execute=True):
        claim_and(moderation_services.hide_message, flag, moderator)
    flagged.refresh_from_db()
    assert flagged.body == "" and flagged.deleted_at is not None
    assert AccountErasure.objects.filter(user_id=quill.pk).exists()  # the report is still open
    assert set(tables_containing(CANARY)) == {"moderation_report"}

    with django_capture_on_commit_callbacks(execute=True):
        claim_and(moderation_services.dismiss_report, report.items.get(), moderator)
    assert not User.objects.filter(pk=quill.pk).exists()
    assert not AccountErasure.objects.exists()
    assert tables_containing(CANARY) == {}
    assert list(Message.objects.filter(group=group).values_list("seq", flat=True)) == [1, 2, 3]


def test_the_hourly_sweep_finishes_an_erasure_whose_close_was_missed(group, facilitator, moderator):
    install_seed_data()
    quill = make_member(display_name="Quillfeather")
    make_membership(group, quill)
    flagged = post(group, quill, f"Honestly, nobody likes you in this circle. {CANARY}")
    services.erase_account(quill, password=PASSWORD, keep_messages=True)
    # Closed without the close path's hook (as if the process died right after the commit).
    QueueItem.objects.filter(message=flagged).update(status="closed", closed_at=timezone.now())
    assert services.finish_erasures() == 1
    assert not User.objects.filter(pk=quill.pk).exists()
    flagged.refresh_from_db()
    assert flagged.author_id is None and CANARY in flagged.body  # they chose to keep them


# --- The canary: written everywhere, found nowhere ------------------------------------------------


def write_everywhere(quill, *, group, facilitator, member, moderator):
    """``quill`` writes ``CANARY`` into every place a member can write; every moderation item
    ends closed. Returns the tables it should be in."""
    install_seed_data()
    words = post(group, quill, f"First {CANARY} thoughts", content_warning=f"{CANARY} note")
    group_services.edit_message(group, author=quill, seq=words.seq, body=f"Edited {CANARY} words")
    second = post(group, quill, f"Another {CANARY} line")
    makes_report = moderation_services.report_message(
        post(group, facilitator, "Welcome, everyone"),
        reporter=quill, category="other", details=f"{CANARY} report reason",
    )  # fmt: skip
    claim_and(moderation_services.dismiss_report, makes_report.items.get(), moderator)
    about = moderation_services.report_message(
        second, reporter=facilitator, category="other", details="Maple's own report"
    )
    action = claim_and(moderation_services.warn_member, about.items.get(), moderator)
    appeal = moderation_services.submit_appeal(action, member=quill, text=f"{CANARY} appeal")
    claim_and(moderation_services.resolve_item, appeal.items.get(), moderator)

    for audience in ("private", "group", "facilitators"):
        group_services.record_check_in(
            quill, group=group, presence=3, feelings=["calm"], note=f"{CANARY} {audience}",
            audience=audience,
        )  # fmt: skip
    group_services.invite_safe_person(quill, invitee=facilitator, note=f"{CANARY} invite note")
    invite = group_services.invite_safe_person(member, invitee=quill, note="Willow's note")
    pair = group_services.accept_safe_person_invite(invite.pk, user=quill)
    post(pair.room, quill, f"Just us, {CANARY}")
    group_services.set_safe_status(quill, text=f"{CANARY} status", hours=4)
    group_services.set_availability(
        quill, windows=[{"days": [2], "start": time(19), "end": time(20)}]
    )
    asks = make_group(name="Asking circle", join_policy="approval")
    group_services.join_group(asks, user=quill, agreement_version=1, message=f"{CANARY} please")
    Mute.objects.create(user=quill, muted=facilitator)
    for obj in (quill, Membership.objects.get(group=group, user=quill)):  # as the admin logs
        LogEntry.objects.create(
            user=moderator,
            content_type=ContentType.objects.get_for_model(type(obj)),
            object_id=str(obj.pk),
            object_repr=str(obj),
            action_flag=CHANGE,
            change_message="[]",
        )
    signed_in(quill).get(reverse("my_data"))  # a tracked session
    services.request_data_export(quill, actor=quill)
    services.request_data_export(member, actor=member)  # names Quillfeather in a notification
    return {
        "community_user",  # display name, email
        "account_emailaddress",
        "groups_message",  # messages, edits, content notes, the check-in card, the pair room
        "moderation_report",
        "moderation_appeal",
        "groups_checkin",
        "community_notification",  # others' notifications naming them
        "groups_safepersoninvite",
        "groups_safestatus",
        "groups_joinrequest",
        "community_dataexport",  # their export, and Willow's naming them
        "django_admin_log",
    }


def test_after_erasure_a_string_the_member_wrote_everywhere_is_nowhere_in_the_database(
    group, facilitator, member, moderator, django_capture_on_commit_callbacks
):
    quill = make_member(display_name="Quillfeather", email=f"{CANARY}@example.test")
    make_membership(group, quill)
    with django_capture_on_commit_callbacks(execute=True):
        expected = write_everywhere(
            quill, group=group, facilitator=facilitator, member=member, moderator=moderator
        )
    assert set(tables_containing(CANARY)) == expected  # the test reaches every place
    assert not AuditEntry.objects.filter(reason__icontains=CANARY).exists()
    assert "moderation_auditentry" not in tables_containing(CANARY)  # ids and codes only

    with django_capture_on_commit_callbacks(execute=True):
        assert services.erase_account(quill, password=PASSWORD, keep_messages=False) is True

    assert tables_containing(CANARY) == {}
    assert AuditEntry.objects.filter(action="report").exists()  # the log itself stays
    assert not AuditEntry.objects.filter(actor_id=quill.pk).exists()
    assert Report.objects.filter(reporter=facilitator).exists()  # Maple's report stays hers


def test_with_messages_kept_the_members_words_stay_only_in_their_authorless_messages(
    group, facilitator, member, moderator, django_capture_on_commit_callbacks
):
    quill = make_member(display_name="Quillfeather", email=f"{CANARY}@example.test")
    make_membership(group, quill)
    with django_capture_on_commit_callbacks(execute=True):
        write_everywhere(
            quill, group=group, facilitator=facilitator, member=member, moderator=moderator
        )
        services.erase_account(quill, password=PASSWORD, keep_messages=True)
    assert set(tables_containing(CANARY)) == {"groups_message"}
    assert not Message.objects.filter(body__icontains=CANARY, author__isnull=False).exists()
    assert not Message.objects.filter(kind="checkin", body__icontains=CANARY).exists()
