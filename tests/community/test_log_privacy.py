"""Application logs never contain message bodies, check-in notes, email addresses or client IP
addresses.

A unique canary string goes through every feature a person writes in, and each test then
searches every captured log record (its message, arguments, traceback, stack and extra fields)
for every canary, and for the email address of every member the test made:

- accounts: signing up, confirming the address, signing in (right and wrong), a password reset
  for a known and an unknown address and setting the new password, adding an address;
- the room: a message with a content note, an edit, a content-note suggestion, a crisis
  message, a refused one; check-in notes (private, for the facilitators, shared as a card);
  a round's prompt and share; asking for help;
- moderation: reports of a message (through its page; a refused one) and of a member, a
  moderator's reasons through the admin, an appeal through its page, the admin's queue pages,
  the daily digest;
- joining: a request's message and the facilitator's answer;
- safe persons: an invitation's note, a status, availability;
- notifications and their emails (the service and the Celery task), the pages that show them;
- a data export (page and file) and an account erasure through its page;
- the chat socket (send, content note, edit, refusals, malformed frames);
- a real Celery worker (notification email, crisis alert, a large export) and a real uvicorn
  process at DEBUG (sign-up, sign-in, the room over WebSocket).

In-process, every logger is captured at DEBUG (the root and each named one, Django's, Celery's,
Channels', allauth's, uvicorn's and websockets' included, and those that don't propagate),
except the loggers ``LOGGING`` in the settings pins above DEBUG, because they put data into
their DEBUG records whatever the caller: ``django.db.backends`` (SQL with its parameters) and
``django.template`` (a template's whole context when a variable is missing: this test found
it). Requests come from a canary IP address. The uvicorn process runs with ``LOG_LEVEL=DEBUG``
and ``--log-level debug`` (production runs ``warning`` with no access log, as here), behind a
canary ``X-Forwarded-For``; its output is searched the same way, and for the session cookie.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import threading
import uuid
from datetime import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from websockets.asyncio.client import connect

from community import data_selectors
from community import services as community_services
from community.asgi import application
from community.errors import DomainError
from community.models import DataExport, Notification, User
from community.tasks import task_send_notification_email
from groups import services as group_services
from groups.models import JoinRequest, Message, SafePersonInvite
from moderation import services as moderation_services
from moderation.models import ModerationAction, QueueItem
from tests.factories import (
    PASSWORD,
    install_seed_data,
    make_group,
    make_member,
    make_membership,
    make_session_key,
)
from tests.servers import UvicornServer, Visitor

# Named as well as every logger that exists when a test starts: some are made only later.
NAMED_LOGGERS = [
    "django", "django.request", "django.security", "django.server", "django.channels.server",
    "allauth", "celery", "celery.app.trace", "celery.worker", "celery.beat", "kombu",
    "channels", "channels_redis", "daphne", "uvicorn", "uvicorn.error", "uvicorn.access",
    "websockets", "websockets.server", "websockets.client", "asyncio", "redis",
    "community", "groups", "moderation",
]  # fmt: skip
CRISIS = "I can't go on anymore, I just want it all to stop."


def canary(feature: str) -> str:
    """A string found nowhere else, naming the feature it went through."""
    return f"canary{feature.replace('-', '')}{uuid.uuid4().hex[:10]}"


def canary_ip() -> str:
    """An address from the documentation range (RFC 5737), random enough to be found only
    where this test put it."""
    return f"198.51.100.{random.randint(2, 254)}"


class Canaries(dict):
    """feature → canary; calling it makes and remembers one."""

    def __call__(self, feature: str) -> str:
        self[feature] = canary(feature)
        return self[feature]

    def emails_of(self, *users) -> None:
        for user in users:
            self[f"email of {user.display_name}"] = user.email


def pinned_loggers() -> set[str]:
    """Loggers the settings keep above DEBUG whatever LOG_LEVEL says."""
    return {name for name, config in settings.LOGGING["loggers"].items() if "level" in config}


class Capture:
    """Every log record of the process at DEBUG, but for the pinned loggers."""

    def __init__(self, caplog):
        self.caplog = caplog
        self.handlers: list[tuple[logging.Logger, logging.Handler]] = []

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.caplog.records

    def start(self) -> Capture:
        pinned = pinned_loggers()
        self.caplog.set_level(logging.DEBUG)
        names = set(NAMED_LOGGERS) | set(logging.root.manager.loggerDict)
        for name in sorted(names):
            if any(name == p or name.startswith(p + ".") for p in pinned):
                continue
            self.caplog.set_level(logging.DEBUG, logger=name)
            logger = logging.getLogger(name)
            if not logger.propagate:  # its records never reach the root's handlers
                self._attach(logger)
        return self

    def again(self) -> None:
        """After something ran ``django.setup()`` again (a Celery worker starting does), which
        applies ``LOGGING`` anew: the root's handlers and level are the settings' again."""
        self._attach(logging.getLogger())
        self.start()

    def _attach(self, logger: logging.Logger) -> None:
        handler = self.caplog.handler  # this phase's (the test's own) capturing handler
        if handler not in logger.handlers:
            logger.addHandler(handler)
            self.handlers.append((logger, handler))

    def stop(self) -> None:
        for logger, handler in self.handlers:
            logger.removeHandler(handler)

    def names(self) -> set[str]:
        return {record.name for record in self.records}


@pytest.fixture
def logs(caplog):
    capture = Capture(caplog)
    yield capture.start()
    capture.stop()


def record_text(record: logging.LogRecord) -> str:
    formatter = logging.Formatter()
    return "\n".join(
        [
            record.getMessage(),
            repr(record.args),
            formatter.formatException(record.exc_info) if record.exc_info else "",
            record.exc_text or "",
            record.stack_info or "",
            repr(vars(record)),
        ]
    ).lower()


def leaks(records, canaries: dict[str, str]) -> dict[str, list[str]]:
    """Each canary found in any record: its message, arguments, traceback or extra fields."""
    found: dict[str, list[str]] = {}
    for record in records:
        text = record_text(record)
        for feature, value in canaries.items():
            if value.lower() in text:
                found.setdefault(feature, []).append(f"{record.name}: {record.getMessage()}")
    return found


def browser(user=None, *, ip: str) -> Client:
    client = Client(REMOTE_ADDR=ip)
    if user is not None:
        client.force_login(user)
    return client


# --- The check itself ---------------------------------------------------------------------------


def test_the_capture_sees_debug_records_of_every_named_logger_and_the_check_finds_a_canary(logs):
    secret = canary("planted")
    for name in NAMED_LOGGERS:
        logging.getLogger(name).debug("a record from %s", name)
    seen = {record.name for record in logs.records}
    assert set(NAMED_LOGGERS) <= seen
    # The check finds a canary wherever a record carries it.
    logging.getLogger("groups").debug("words: %s", secret)
    logging.getLogger("celery").info("plain", extra={"body": secret})
    try:
        raise ValueError(secret)
    except ValueError:
        logging.getLogger("django.request").exception("failed")
    found = leaks(logs.records, {"planted": secret})
    assert len(found["planted"]) == 3


def test_the_loggers_that_log_data_at_debug_are_pinned_above_it():
    assert {"django.db.backends", "django.template"} <= pinned_loggers()
    for name in ("django.db.backends", "django.template"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)


def test_the_servers_filter_drops_the_websockets_librarys_wire_records_and_hides_addresses():
    import websockets.protocol

    from community.logs import WithoutWireContents

    def record(level, pathname, msg, *args):
        return logging.LogRecord("uvicorn.error", level, pathname, 1, msg, args, None)

    wire = websockets.protocol.__file__
    keep = WithoutWireContents()
    assert not keep.filter(record(logging.DEBUG, wire, "< TEXT %r [%d bytes]", "words", 5))
    assert not keep.filter(record(logging.DEBUG, wire, "< %s: %s", "cookie", "sessionid=k"))
    assert keep.filter(record(logging.INFO, wire, "connection closed"))
    accepted = record(
        logging.INFO, __file__, '%s - "WebSocket %s" [accepted]', "198.51.100.7:0", "/ws/"
    )
    assert keep.filter(accepted)
    assert accepted.getMessage() == 'client - "WebSocket /ws/" [accepted]'
    v6 = record(logging.INFO, __file__, "%s - x", "[2001:db8::1]:443")
    assert keep.filter(v6) and v6.getMessage() == "client - x"
    started = record(
        logging.INFO, __file__, "Uvicorn running on %s://%s:%d", "http", "127.0.0.1", 80
    )
    assert keep.filter(started) and "127.0.0.1" in started.getMessage()  # not a client


# --- Accounts -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_accounts_log_no_email_address_and_no_ip_address(logs, member, mailoutbox):
    c = Canaries()
    ip = c["ip"] = canary_ip()
    anonymous = browser(ip=ip)
    signup_email = c("signup-email") + "@example.test"
    password = "slow river under the bridge"
    response = anonymous.post(
        reverse("account_signup"),
        {
            "email": signup_email,
            "display_name": "Fern",
            "time_zone": "Europe/Berlin",
            "password1": password,
            "password2": password,
        },
    )
    assert response.status_code == 302
    link = re.search(r"(/accounts/confirm-email/\S+/)", mailoutbox[-1].body).group(1)
    assert anonymous.post(link).status_code == 302  # confirmed, and signed in
    added = c("added-email") + "@example.test"
    response = anonymous.post(reverse("account_email"), {"email": added, "action_add": ""})
    assert response.status_code == 302
    assert signup_email in mailoutbox[0].to
    anonymous.post(reverse("account_logout"))

    # Signing in: an unknown address, a wrong password, the right one.
    unknown = c("login-email") + "@example.test"
    response = anonymous.post(reverse("account_login"), {"login": unknown, "password": "no!"})
    assert response.status_code == 200  # the form again, with a kind error
    anonymous.post(reverse("account_login"), {"login": signup_email, "password": "wrong one"})
    response = anonymous.post(
        reverse("account_login"), {"login": signup_email, "password": password}
    )
    assert response.status_code == 302
    anonymous.post(reverse("account_logout"))

    # A password reset for an unknown and a known address, and the new password set.
    reset = reverse("account_reset_password")
    anonymous.post(reset, {"email": c("reset-email") + "@example.test"})
    mailoutbox.clear()
    anonymous.post(reset, {"email": member.email})
    (email,) = mailoutbox
    key_url = re.search(r"(/accounts/password/reset/key/\S+/)", email.body).group(1)
    set_password_url = anonymous.get(key_url)["Location"]
    new_password = "a new and quiet harbour morning"
    response = anonymous.post(
        set_password_url, {"password1": new_password, "password2": new_password}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(new_password)

    c.emails_of(member)
    assert User.objects.filter(email=signup_email).exists()
    assert "community.services.sessions" in logs.names()  # the capture saw the reset's end
    assert leaks(logs.records, c) == {}


# --- The room, check-ins, rounds, safe persons, joining ---------------------------------------


@pytest.mark.django_db
def test_the_room_check_ins_rounds_safe_persons_and_joining_log_no_words(
    logs, group, member, facilitator
):
    c = Canaries()
    ip = c["ip"] = canary_ip()
    install_seed_data()  # the default flag rules: a crisis message opens an item and alerts
    post = group_services.post_message

    # Messages: a body with a content note, an edit, a suggestion, a crisis message, a refusal.
    message = post(
        group,
        author=member,
        client_id=uuid.uuid4(),
        body=f"Today {c('body')} helped",
        content_warning=c("content-note"),
    ).message
    group_services.edit_message(group, author=member, seq=message.seq, body=c("edit"))
    with pytest.raises(DomainError) as suggestion:
        post(
            group,
            author=member,
            client_id=uuid.uuid4(),
            body=f"Grief since my mother died {c('suggested')}",
            suggest_note=True,
        )
    assert suggestion.value.code == "suggest_content_note"
    post(group, author=member, client_id=uuid.uuid4(), body=f"{CRISIS} {c('crisis')}")
    assert QueueItem.objects.filter(kind="crisis").exists()
    with pytest.raises(DomainError):
        post(group, author=member, client_id=uuid.uuid4(), body=c("refused-body") * 400)
    moderation_services.request_help(group, user=member)

    # Check-ins through the room's endpoint: private, for the facilitators, shared as a card.
    room = browser(member, ip=ip)
    for audience in ("private", "facilitators", "group"):
        response = room.post(
            reverse("groups:record_check_in", args=[group.slug]),
            {"presence": 3, "feelings": ["tired"], "note": c(f"{audience}-note"),
             "audience": audience},
            HTTP_ACCEPT="application/json",
        )  # fmt: skip
        assert response.status_code == 200, response.content
    refused = room.post(
        reverse("groups:record_check_in", args=[group.slug]),
        {"presence": 9, "note": c("refused-note") * 20, "audience": "group"},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 400

    # A round: a prompt and a share.
    for user in (facilitator, member):
        group_services.enter_room(
            group.memberships.get(user=user), connection_id=f"socket-{user.pk}"
        )
    round_ = group_services.start_round(group, actor=facilitator, prompt=c("round-prompt"))
    current = round_.turns.get(status="current").user
    group_services.share_turn(group, user=current, client_id=uuid.uuid4(), body=c("share"))

    # Asking to join, and the answer, through their pages.
    circle = make_group(name="Morning circle", join_policy="approval")
    make_membership(circle, facilitator, role="facilitator")
    response = room.post(
        reverse("groups:join", args=[circle.slug]),
        {"agreement_version": circle.agreement_version, "accept": "on",
         "message": c("join-message")},
    )  # fmt: skip
    assert response.status_code == 302
    request = JoinRequest.objects.get(group=circle, user=member)
    response = browser(facilitator, ip=ip).post(
        reverse("groups:decide_request", args=[circle.slug, request.pk]),
        {"decision": "decline", "note": c("join-answer")},
    )
    assert response.status_code == 302

    # Safe persons: an invitation's note and a status, through their pages; availability.
    response = room.post(
        reverse("groups:safe_person_invite"),
        {"person": facilitator.display_name, "note": c("invite-note")},
    )
    assert response.status_code == 302
    invite = SafePersonInvite.objects.get(note=c["invite-note"])
    group_services.accept_safe_person_invite(invite.pk, user=facilitator)
    response = room.post(
        reverse("groups:safe_person_status"), {"text": c("safe-status"), "hours": 4}
    )
    assert response.status_code == 302
    group_services.set_availability(
        member, windows=[{"days": [0, 1], "start": time(18), "end": time(21)}]
    )

    # The pages that show all of it.
    for user, url in [
        (member, reverse("groups:room", args=[group.slug])),
        (member, reverse("groups:room_history", args=[group.slug]) + "?before=1000"),
        (member, reverse("groups:my_check_ins")),
        (facilitator, reverse("groups:shared_check_ins", args=[group.slug])),
        (facilitator, reverse("groups:requests", args=[circle.slug])),
        (member, reverse("groups:safe_persons")),
        (facilitator, reverse("groups:safe_persons")),
    ]:
        assert browser(user, ip=ip).get(url).status_code == 200, url

    c.emails_of(member, facilitator)
    assert Message.objects.filter(body=c["edit"]).exists()
    assert Message.objects.filter(body=c["group-note"]).exists()
    # The capture saw what these features log (and the refused check-in's 400).
    assert {"groups.services.chat", "moderation.services.screening", "django.request"} <= (
        logs.names()
    )
    assert leaks(logs.records, c) == {}


# --- Moderation, notifications, emails, my data ------------------------------------------------


@pytest.mark.django_db
def test_moderation_notifications_emails_and_my_data_log_no_words(
    logs, settings, group, member, facilitator, moderator, mailoutbox
):
    c = Canaries()
    ip = c["ip"] = canary_ip()
    settings.ADMIN_REQUIRE_MFA = False
    post = group_services.post_message
    message = post(group, author=member, client_id=uuid.uuid4(), body=c("reported")).message
    others = post(group, author=facilitator, client_id=uuid.uuid4(), body="Hello").message

    # Reports: a message's through its page (and a refused one), a member's.
    reporter = browser(member, ip=ip)
    report_url = reverse("moderation:report_message", args=[group.slug, others.seq])
    response = reporter.post(report_url, {"category": "other", "details": c("report-details")})
    assert response.status_code == 302
    refused = reporter.post(
        report_url, {"category": "nonsense", "details": c("refused-report") * 100}
    )
    assert refused.status_code in (302, 400)
    moderation_services.report_member(
        facilitator, reporter=member, group=group, category="other",
        details=c("member-report-details"),
    )  # fmt: skip

    # A moderator's reasons, through the admin; an appeal through its page.
    admin = browser(moderator, ip=ip)
    report = moderation_services.report_message(
        message, reporter=facilitator, category="other", details="Looked at with care."
    )
    item = moderation_services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    assert (
        admin.get(reverse("admin:moderation_queueitem_change", args=[item.pk])).status_code == 200
    )
    response = admin.post(
        reverse("admin:moderation_queueitem_act", args=[item.pk, "warn"]), {"reason": c("reason")}
    )
    assert response.status_code == 302
    assert Notification.objects.filter(user=member, body__contains=c["reason"]).exists()
    action = ModerationAction.objects.get(reason=c["reason"])
    response = reporter.post(
        reverse("moderation:appeal", args=[action.pk]), {"kind": "appeal", "text": c("appeal")}
    )
    assert response.status_code == 302
    appeal_item = QueueItem.objects.get(appeal__action=action)
    moderation_services.claim_item(appeal_item, moderator=moderator)
    page = admin.get(reverse("admin:moderation_queueitem_change", args=[appeal_item.pk]))
    assert page.status_code == 200
    response = admin.post(
        reverse("admin:moderation_queueitem_act", args=[appeal_item.pk, "resolve"]),
        {"reason": c("resolve-reason")},
    )
    assert response.status_code == 302
    assert admin.get(reverse("admin:moderation_queueitem_changelist")).status_code == 200
    moderation_services.send_moderation_digest()

    # Notifications and their emails: the service, and the Celery task's function.
    notification = community_services.notify(
        member, kind="moderation_action", title=c("notification-title"),
        body=c("notification-body"),
    )  # fmt: skip
    mailoutbox.clear()
    assert task_send_notification_email(notification_id=notification.pk)
    assert c["notification-body"] in mailoutbox[0].body
    for url in (reverse("notifications"), reverse("moderation:mine"), reverse("my_data")):
        assert reporter.get(url).status_code == 200, url

    # A data export (its page and its file), and an account erased through its page.
    export = community_services.request_data_export(member, actor=member)
    token = data_selectors.export_link_token(export)
    assert reporter.get(reverse("data_export_view", args=[token])).status_code == 200
    assert reporter.get(reverse("data_export_download", args=[token])).status_code == 200
    leaving = make_member(display_name="Rowan")
    make_membership(group, leaving)
    post(group, author=leaving, client_id=uuid.uuid4(), body=c("erased-body"))
    c.emails_of(member, facilitator, moderator, leaving)
    response = browser(leaving, ip=ip).post(
        reverse("account_erase"), {"messages": "erase", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert not User.objects.filter(pk=leaving.pk, is_active=True).exists()

    assert {"moderation.services.reports", "community.services.notifications"} <= logs.names()
    assert leaks(logs.records, c) == {}


# --- The chat socket ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_no_log_line_holds_what_is_sent_over_the_chat_socket(logs, group, member):
    c = Canaries()
    key = await database_sync_to_async(make_session_key)(member)
    comm = WebsocketCommunicator(
        application,
        f"/ws/groups/{group.slug}/",
        headers=[(b"origin", b"http://localhost:8000"), (b"cookie", f"sessionid={key}".encode())],
    )
    connected, _ = await comm.connect(timeout=5)
    assert connected
    frames = [
        {"type": "send", "client_id": str(uuid.uuid4()), "body": c("socket-body"),
         "content_warning": c("socket-note")},
        {"type": "send", "client_id": str(uuid.uuid4()), "body": c("socket-refused") * 400},
        {"type": "no-such-frame", "body": c("unknown-frame")},
        {"type": "send", "client_id": "not-a-uuid", "body": c("bad-id")},
    ]  # fmt: skip
    for frame in frames:
        await comm.send_to(text_data=json.dumps(frame))
    await comm.send_to(text_data="{not json " + c("not-json"))
    answers = []
    while not await comm.receive_nothing(timeout=1):
        answers.append(json.loads(await comm.receive_from()))
    seq = next(a["seq"] for a in answers if a.get("type") == "ack")
    await comm.send_to(text_data=json.dumps({"type": "edit", "seq": seq, "body": c("edited")}))
    while not await comm.receive_nothing(timeout=1):
        answers.append(json.loads(await comm.receive_from()))
    await comm.disconnect()
    await get_channel_layer().flush()
    assert any(a.get("type") == "error" for a in answers), answers
    assert await database_sync_to_async(Message.objects.filter(body=c["edited"]).exists)()
    c.emails_of(member)
    c["session cookie"] = key
    assert "groups.services.chat" in logs.names()
    assert leaks(logs.records, c) == {}


# --- A real Celery worker ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_logs_no_words_or_email_addresses(
    logs, settings, group, member, facilitator, moderator
):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from community.celery import app

    c = Canaries()
    install_seed_data()
    settings.DATA_EXPORT_INLINE_MAX_ROWS = 0  # the export is built by the worker
    finished: list[str] = []
    done = threading.Semaphore(0)

    def count(sender=None, **extra):
        finished.append(getattr(sender, "name", ""))
        done.release()

    app.control.purge()  # tasks other tests left in this run's broker
    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            logs.again()  # the worker's start ran django.setup(), which reset logging
            # Enqueued on commit: a notification's email, a crisis alert, a large export.
            community_services.notify(
                member, kind="moderation_action", title=c("worker-title"),
                body=c("worker-body"),
            )  # fmt: skip
            group_services.post_message(
                group, author=member, client_id=uuid.uuid4(), body=f"{CRISIS} {c('crisis')}"
            )
            community_services.request_data_export(member, actor=member)
            wanted = {
                "community.tasks.task_send_notification_email",
                "community.tasks.task_build_data_export",
            }
            while not wanted <= set(finished):
                assert done.acquire(timeout=60), finished
            while done.acquire(timeout=2):  # anything else the crisis enqueued
                pass
    finally:
        task_postrun.disconnect(count)
    assert any(c["worker-body"] in m.body for m in mail.outbox)
    assert DataExport.objects.get(user=member).status == "ready"
    c.emails_of(member, facilitator, moderator)
    # The capture saw the worker (which logs some lines at DEBUG only in a fresh process) and
    # the tasks' own services.
    assert any(name.startswith("celery.") for name in logs.names())
    assert {"community.services.notifications", "community.services.data"} <= logs.names()
    assert leaks(logs.records, c) == {}


# --- A real uvicorn process at DEBUG ------------------------------------------------------------


def confirmation_path(outbox: Path, email: str) -> str:
    for file in outbox.iterdir():
        text = file.read_text(errors="replace")
        if f"To: {email}" in text:
            link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", text).group(0)
            return urlparse(link).path
    raise AssertionError(f"no confirmation email reached {email}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(90)
def test_a_uvicorn_process_at_debug_logs_no_words_cookies_or_addresses(tmp_path, group, member):
    """uvicorn as the Procfile runs it (proxy headers, no access log), but at DEBUG, and
    Django's root logger at DEBUG: a newcomer signs up, confirms, joins, checks in and talks
    in the room over WebSocket; a stranger fails to sign in with a member's address."""
    c = Canaries()
    ip = c["ip"] = canary_ip()
    log, outbox = tmp_path / "web.log", tmp_path / "outbox"
    outbox.mkdir()
    server = UvicornServer(
        env={"LOG_LEVEL": "DEBUG", "EMAIL_URL": f"filemail:///{outbox}"},
        log=log,
        log_level="debug",
        extra_args=["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1", "--no-access-log"],
    ).start()
    try:
        newcomer = Visitor(server.port, proxy={"X-Forwarded-For": ip})
        email = c("signup-email") + "@example.test"
        password = "slow river under the bridge"
        status, _headers, _page = newcomer.submit(
            "/accounts/signup/",
            {"email": email, "display_name": "Fern", "time_zone": "Europe/Berlin",
             "password1": password, "password2": password},
        )  # fmt: skip
        assert status == 302
        status, _headers, _page = newcomer.submit(confirmation_path(outbox, email), {})
        assert status == 302, "confirming the address signs the newcomer in"
        join = reverse("groups:join", args=[group.slug])
        status, _headers, page = newcomer.request("GET", join)
        version = re.search(r'name="agreement_version" value="(\d+)"', page).group(1)
        status, _headers, _page = newcomer.submit(
            join, {"agreement_version": version, "accept": "on", "message": c("join-message")}
        )
        assert status == 302
        status, _headers, _page = newcomer.submit(
            reverse("groups:record_check_in", args=[group.slug]),
            {"presence": 3, "note": c("check-in-note"), "audience": "group"},
            form_page=reverse("groups:room", args=[group.slug]),
        )
        assert status == 302
        stranger = Visitor(server.port, proxy={"X-Forwarded-For": ip})
        status, _headers, _page = stranger.submit(
            "/accounts/login/", {"login": member.email, "password": "not theirs"}
        )
        assert status == 200
        session = c["session cookie"] = newcomer.cookies["sessionid"]

        async def chat():
            async with connect(
                f"ws://localhost:{server.port}/ws/groups/{group.slug}/",
                origin=f"http://localhost:{server.port}",
                additional_headers={"Cookie": f"sessionid={session}", "X-Forwarded-For": ip},
                open_timeout=10,
            ) as ws:
                client_id = str(uuid.uuid4())
                await ws.send(json.dumps({
                    "type": "send", "client_id": client_id, "body": c("ws-body"),
                    "content_warning": c("ws-note"),
                }))  # fmt: skip
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                    if frame.get("type") == "ack" and frame.get("client_id") == client_id:
                        break
                edit = {"type": "edit", "seq": frame["seq"], "body": c("ws-edit")}
                await ws.send(json.dumps(edit))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                    if frame.get("type") == "update" and frame.get("body") == c["ws-edit"]:
                        break

        asyncio.run(chat())
    finally:
        server.stop()
    output = log.read_text(errors="replace")
    # uvicorn's own lines pass, with the client's address replaced (without the filter the log
    # holds the session cookie, the address and the frames' text: tried, and seen).
    assert f'client - "WebSocket /ws/groups/{group.slug}/" [accepted]' in output
    assert Message.objects.filter(body=c["ws-edit"]).exists()
    assert Message.objects.filter(body=c["check-in-note"], kind="checkin").exists()
    c.emails_of(member, User.objects.get(email=email))
    lowered = output.lower()
    found = {feature for feature, value in c.items() if value.lower() in lowered}
    assert found == set(), [
        line for line in output.splitlines() if any(c[f] in line for f in found)
    ]
