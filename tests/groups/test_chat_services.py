"""Chat services and selectors on the real database: seq assignment under concurrency,
idempotency, visibility and paging."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from community.errors import DomainError, PermissionDenied
from groups import selectors, services
from groups.models import Membership, Message
from tests.factories import make_group, make_member, make_membership


def post(group, user, body="words", **extra):
    return services.post_message(
        group, author=user, client_id=extra.pop("client_id", uuid.uuid4()), body=body, **extra
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_get_gap_free_seqs_with_no_duplicates(group):
    senders = [make_member() for _ in range(6)]
    for user in senders:
        make_membership(group, user)
    errors = []
    start = threading.Barrier(len(senders))

    def send_many(user):
        try:
            start.wait()
            for n in range(8):
                post(group, user, f"message {n}")
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send_many, args=(u,)) for u in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(Message.objects.filter(group=group).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 49))


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_client_id_store_one_message(group, member):
    client_id = uuid.uuid4()
    results, start = [], threading.Barrier(4)

    def send():
        try:
            start.wait()
            results.append(post(group, member, "once", client_id=client_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Message.objects.count() == 1
    assert {r.message.seq for r in results} == {1}
    assert sum(r.created for r in results) == 1


def test_seqs_are_counted_per_group(group, member):
    other = make_membership(make_group(), member).group
    assert [post(group, member).message.seq for _ in range(2)] == [1, 2]
    assert post(other, member).message.seq == 1


def test_someone_outside_the_group_cannot_post(group, outsider):
    with pytest.raises(PermissionDenied) as refused:
        post(group, outsider)
    assert refused.value.code == "not_member"
    assert Message.objects.count() == 0


def test_a_hidden_message_keeps_its_seq_but_members_see_no_words(group, member, facilitator):
    seq = post(group, facilitator, "something harmful").message.seq
    Message.objects.filter(seq=seq).update(hidden_at=timezone.now())
    membership = Membership.objects.get(user=member)
    [payload] = selectors.messages_after(membership, after=0)
    assert (payload["seq"], payload["hidden"], payload["body"]) == (seq, True, "")


def test_history_pages_go_back_by_seq_and_never_return_everything(group, member):
    for n in range(1, 8):
        post(group, member, f"m{n}")
    membership = Membership.objects.get(user=member)
    newest, more = selectors.messages_before(membership, limit=3)
    assert ([p["seq"] for p in newest], more) == ([5, 6, 7], True)
    older, more = selectors.messages_before(membership, before=5, limit=3)
    assert ([p["seq"] for p in older], more) == ([2, 3, 4], True)
    oldest, more = selectors.messages_before(membership, before=2, limit=3)
    assert ([p["seq"] for p in oldest], more) == ([1], False)


def test_the_frame_a_reader_gets_names_no_user_ids(group, member, facilitator):
    result = post(group, member, "hello")
    services.toggle_reaction(group, user=facilitator, seq=result.message.seq, reaction="heart")
    membership = Membership.objects.get(user=facilitator)
    [payload] = selectors.messages_after(membership, after=0)
    frame = selectors.frame_for_viewer(payload, viewer_id=facilitator.pk)
    assert "author_id" not in frame
    assert "reactors" not in frame
    assert frame["reactions"] == {"heart": 1}
    assert frame["my_reactions"] == ["heart"]
    assert frame["own"] is False


def test_a_reaction_on_a_deleted_message_is_refused(group, member):
    seq = post(group, member).message.seq
    services.delete_message(group, actor=member, seq=seq)
    with pytest.raises(DomainError) as refused:
        services.toggle_reaction(group, user=member, seq=seq, reaction="heart")
    assert refused.value.code == "not_reactable"


def test_a_member_may_delete_their_words_even_while_muted(group, member):
    seq = post(group, member, "regret").message.seq
    Membership.objects.filter(user=member).update(muted_until=timezone.now() + timedelta(hours=1))
    services.delete_message(group, actor=member, seq=seq)
    assert Message.objects.get(seq=seq).body == ""


def test_a_broadcast_that_fails_after_commit_is_logged_and_the_message_stays_stored(
    group, member, settings, django_capture_on_commit_callbacks, caplog
):
    from tests.servers import free_port

    # A channel layer whose Redis is not there: the broadcast fails, the post does not.
    layer = dict(settings.CHANNEL_LAYERS["default"])
    layer["CONFIG"] = {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/2"}]}
    settings.CHANNEL_LAYERS = {"default": layer}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = post(group, member, "kept safe")
    assert len(callbacks) == 1
    assert result.created
    assert Message.objects.get().body == "kept safe"
    assert "clients will catch up from the database" in caplog.text
    assert "kept safe" not in caplog.text  # no message bodies in logs


def test_each_change_to_a_stored_message_takes_the_groups_next_rev(group, member, facilitator):
    first = post(group, member, "tierd").message.seq
    second = post(group, facilitator, "welcome").message.seq
    other_group = make_membership(make_group(), member).group
    elsewhere = post(other_group, member, "elsewhere").message.seq

    services.edit_message(group, author=member, seq=first, body="tired")
    services.toggle_reaction(group, user=facilitator, seq=first, reaction="heart")
    services.toggle_reaction(group, user=facilitator, seq=first, reaction="heart")  # taken back
    services.toggle_reaction(group, user=member, seq=second, reaction="hear_you")
    services.toggle_reaction(other_group, user=member, seq=elsewhere, reaction="me_too")
    with transaction.atomic():  # as moderation hides a message: lock, write, record
        services.lock_room(group.pk)
        hidden = Message.objects.get(group=group, seq=second)
        hidden.hidden_at = timezone.now()
        Message.objects.filter(pk=hidden.pk).update(hidden_at=hidden.hidden_at)
        services.broadcast_message_update(hidden)
    services.delete_message(group, actor=member, seq=first)
    services.delete_message(group, actor=member, seq=first)  # already deleted: no change

    revs = dict(Message.objects.filter(group=group).values_list("seq", "rev"))
    assert revs == {first: 6, second: 5}  # the latest change of each; 1-6 used once each
    assert Message.objects.get(group=other_group).rev == 1
    membership = Membership.objects.get(user=member, group=group)
    position = selectors.room_position(membership.pk)
    assert (position.seq, position.rev) == (2, 6)
    changed = selectors.room_changes(membership.pk, since=5, up_to=6, max_seq=2)
    assert [(p["seq"], p["deleted"]) for p in changed] == [(first, True)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_get_gap_free_revs(group, facilitator):
    reactors = [make_member() for _ in range(5)]
    for user in reactors:
        make_membership(group, user)
    seq = post(group, facilitator, "something to react to").message.seq
    errors, start = [], threading.Barrier(len(reactors))

    def react_many(user):
        try:
            start.wait()
            for reaction in ("heart", "hear_you", "me_too", "strength"):
                services.toggle_reaction(group, user=user, seq=seq, reaction=reaction)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=react_many, args=(u,)) for u in reactors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Message.objects.get(seq=seq).rev == 20  # 20 changes: revs 1…20, none shared
    membership = Membership.objects.get(user=facilitator)
    assert selectors.room_position(membership.pk).rev == 20
