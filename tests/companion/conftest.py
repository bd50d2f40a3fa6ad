"""Helpers for the practice companion's tests: a member's practice space, writing in it through
the real chat service (so the companion answers after commit, as it does in production), and a
local server speaking the OpenAI-compatible chat-completions protocol."""

import uuid

import pytest

from companion.models import PracticeSpace
from companion.services import open_practice_space
from groups import services as group_services
from groups.models import Message, MessageKind
from tests.factories import seed_for_database_tests


@pytest.fixture(autouse=True)
def _seed_data(request):
    """The default crisis rules and resources, for every test that uses the database."""
    seed_for_database_tests(request)


@pytest.fixture
def space(member):
    """Willow's practice space, just opened (the companion's greeting is message 1)."""
    return open_practice_space(member, actor=member)


@pytest.fixture
def write(django_capture_on_commit_callbacks):
    """``write(space, "words")``: the member posts in their practice room through
    ``groups.services.post_message``; after commit the companion answers. Returns the
    companion's replies to it (their bodies), oldest first."""

    def write_(space, body, **extra):
        before = last_seq(space)
        with django_capture_on_commit_callbacks(execute=True):
            group_services.post_message(
                space.room,
                author=space.user,
                client_id=uuid.uuid4(),
                body=body,
                **extra,
            )
        return replies_after(space, before)

    return write_


def last_seq(space) -> int:
    return (
        Message.objects.filter(group_id=space.room_id)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
        or 0
    )


def replies_after(space, seq) -> list[str]:
    return list(
        Message.objects.filter(group_id=space.room_id, seq__gt=seq, kind=MessageKind.COMPANION)
        .order_by("seq")
        .values_list("body", flat=True)
    )


def fresh(space) -> PracticeSpace:
    return PracticeSpace.objects.get(pk=space.pk)
