"""The optional generative backend, against a local server speaking the OpenAI-compatible
chat-completions protocol (started by each test in a thread): it only ever stands in for the
replies no flow has, is given the member's display name and their own words and nothing of
anyone else, and when it is down, slow, answers garbage or says something unsafe, the built-in
reply is stored instead. With it on, replies are worked out in Celery."""

import threading
import time
import uuid
from datetime import time as clock

import pytest
from django.db import connection

from companion.backends import backend_status, generative_enabled
from companion.models import CompanionReply, ReplySource
from companion.services import answer_practice_messages
from groups import services as group_services
from groups.models import Message
from tests.companion.conftest import last_seq, replies_after
from tests.companion.fake_model import FakeModel

FREE = "Long day. The house is very quiet tonight."


@pytest.fixture
def model(settings):
    fake = FakeModel().start()
    settings.COMPANION_API_BASE = fake.base
    settings.COMPANION_MODEL = "test-model"
    settings.COMPANION_API_KEY = "test-key-not-secret"
    settings.COMPANION_TIMEOUT = 2
    yield fake
    fake.stop()


def say(space, body):
    """The member writes; with a model on, the reply is left to Celery, so it is worked out
    here by calling the service the task calls. Returns (reply, its source)."""
    before = last_seq(space)
    group_services.post_message(space.room, author=space.user, client_id=uuid.uuid4(), body=body)
    answer_practice_messages(space.room_id)
    replies = replies_after(space, before)
    assert len(replies) == 1
    source = CompanionReply.objects.get(message__group=space.room, message__body=replies[0]).source
    return replies[0], source


@pytest.mark.django_db
def test_free_words_get_the_models_reply_and_it_is_told_its_boundaries(space, model):
    reply, source = say(space, FREE)
    assert (reply, source) == (model.reply, ReplySource.MODEL)
    request = model.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "test-model"
    system = request["messages"][0]
    assert system["role"] == "system"
    assert "not a person" in system["content"] and "Never diagnose" in system["content"]
    assert "Willow" in system["content"]
    assert request["messages"][-1] == {"role": "user", "content": FREE}
    assert model.headers[-1]["Authorization"] == "Bearer test-key-not-secret"


@pytest.mark.django_db
def test_guided_flows_honesty_and_stopping_never_ask_the_model(space, model):
    for words in ("Grounding", "Breathe slowly", "Are you a real person?", "stop"):
        say(space, words)
    assert model.requests == []


@pytest.mark.django_db
def test_crisis_words_and_the_crisis_conversation_are_never_sent_to_the_model(space, model):
    crisis = "I can't go on anymore, I just want it all to stop."
    reply, source = say(space, crisis)
    assert "let a moderator know" in reply and source == ReplySource.BUILT_IN
    say(space, "Not now")
    assert model.requests == []  # the crisis conversation is the built-in companion's
    say(space, FREE)  # later free words go to the model, without what came before
    sent = str(model.requests)
    assert FREE in sent
    assert crisis not in sent
    assert not any("moderator" in m["content"] for m in model.requests[0]["messages"][1:])


@pytest.mark.django_db
def test_nothing_of_another_member_reaches_the_model(space, member, facilitator, group, model):
    # Maple (Willow's facilitator, and her safe person) writes in the circle, has a status
    # and usual times; Willow asks who she can reach, which names Maple.
    group_services.post_message(
        group, author=facilitator, client_id=uuid.uuid4(), body="maple-private-words-5521"
    )
    group_services.accept_safe_person_invite(
        group_services.invite_safe_person(member, invitee=facilitator).pk, user=facilitator
    )
    group_services.set_safe_status(facilitator, text="maple-status-8812", hours=4)
    group_services.set_availability(
        facilitator, windows=[{"days": [5, 6], "start": clock(10), "end": clock(12)}]
    )
    people, _source = say(space, "Who can I reach?")
    assert "Maple" in people
    say(space, "I feel tired")  # a flow's reply quoting Willow: fine to send
    say(space, "Nowhere in particular")
    say(space, FREE)

    sent = str(model.requests)
    assert "Willow" in sent and FREE in sent and "I feel tired" in sent
    for other in (
        "Maple",
        "maple@example.test",
        "maple-private-words-5521",
        "maple-status-8812",
        "Evening circle",
        member.email,
    ):
        assert other not in sent
    roles = {m["role"] for r in model.requests for m in r["messages"]}
    assert roles == {"system", "user", "assistant"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mode", "reply"),
    [
        ("garbage", None),
        ("empty", None),
        ("error", None),
        ("ok", "I'm a real person too, and I feel so sad for you."),  # unsafe: refused
        ("ok", "Take more of your sleeping pills tonight."),  # unsafe: refused
        ("ok", "   "),
    ],
)
def test_a_bad_or_unsafe_answer_falls_back_to_the_built_in_reply(space, model, mode, reply):
    model.mode = mode
    if reply is not None:
        model.reply = reply
    text, source = say(space, FREE)
    assert source == ReplySource.FALLBACK
    assert f"“{FREE}”" in text  # the built-in reply to the same words
    assert len(model.requests) == 1


@pytest.mark.django_db
def test_a_slow_model_times_out_into_the_built_in_reply(space, model, settings):
    settings.COMPANION_TIMEOUT = 0.3
    model.mode = "slow"  # holds every answer until released (at the end of the test)
    text, source = say(space, FREE)
    assert source == ReplySource.FALLBACK and f"“{FREE}”" in text


@pytest.mark.django_db
def test_a_model_that_is_down_falls_back_and_the_members_message_is_kept(space, model):
    model.stop()
    text, source = say(space, FREE)
    assert source == ReplySource.FALLBACK and f"“{FREE}”" in text
    assert Message.objects.filter(group=space.room, body=FREE, author=space.user).exists()


@pytest.mark.django_db
def test_a_long_answer_is_cut_at_a_sentence_end(space, model):
    model.reply = "That sounds like a long day. " * 40
    text, source = say(space, FREE)
    assert source == ReplySource.MODEL
    assert text.endswith("day.") and len(text) <= 600


@pytest.mark.django_db
def test_the_admin_shows_whether_the_model_is_on(settings, moderator, model):
    assert generative_enabled()
    status = backend_status()
    assert (status.enabled, status.model, status.host) == (
        True,
        "test-model",
        model.base.split("/")[2],
    )
    settings.COMPANION_API_BASE = ""
    assert not generative_enabled() and not backend_status().enabled
    settings.COMPANION_API_BASE = "file:///etc/passwd"  # only http(s) is ever asked
    assert not generative_enabled()


@pytest.mark.django_db(transaction=True)
def test_with_a_model_on_replies_are_worked_out_in_celery_not_in_the_web_process(
    member, group, model, settings
):
    """A real Celery worker on real Redis (not eager). The member's message is stored and the
    web side returns while the model is still thinking; the reply arrives from the worker."""
    from celery.contrib.testing.worker import start_worker

    from community.celery import app
    from companion.services import open_practice_space
    from tests.factories import install_seed_data

    install_seed_data()
    space = open_practice_space(member, actor=member)
    model.mode = "slow"
    settings.COMPANION_TIMEOUT = 20  # generous: the test releases the model itself
    app.control.purge()  # tasks other tests left in this test run's broker
    group_services.post_message(space.room, author=member, client_id=uuid.uuid4(), body=FREE)
    # Returned at once: nothing answered inline, the model not even asked yet.
    assert replies_after(space, 2) == [] and model.requests == []

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert model.received.wait(timeout=30)
        assert replies_after(space, 2) == []  # the model is thinking; the room waits
        threading.Timer(0.2, model.release).start()
        for _ in range(300):
            if replies_after(space, 2):
                break
            time.sleep(0.1)
    connection.close()
    assert replies_after(space, 2) == [model.reply]
