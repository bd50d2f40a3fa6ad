"""The companion answering the member: after each of their messages commits, it reads what is
waiting, works out its replies, and stores them in the practice room like any message.

When it runs: ``reply_after_commit`` is called once a member's message in a practice room has
committed (``companion.receivers``). With the built-in flows only, it answers at once in the
same worker (a few queries, no network). With a generative model on, it enqueues
``task_answer_practice_messages`` instead, so a slow model holds a Celery worker, never a web
worker or a socket. A beat task (``task_answer_waiting_practice``) answers anything a lost
task or a crash left waiting. Each run is safe to run twice, and at once: it works from
``answered_seq`` and stores its replies only if nobody else moved it meanwhile.

What it does with each waiting message, in order (``companion.engine`` for the words):

1. Crisis language (moderation's matcher): the flow stops, the crisis resources appear for the
   member alone, and the companion asks whether it may let a moderator know. Always answered,
   even past a rate limit.
2. Resting (a rate limit or the daily cap): one notice, then nothing until it passes. The
   member's messages are all kept; only the companion is quiet.
3. The built-in reply. Only a ``free`` reply (words no flow expects) may come from a model,
   and only when the model answers in time with something the reply filter allows.

The crisis policy (docs/companion.md): consent. A moderator is told only when the member says
yes (a crisis item with their message, at the top of the queue, on-call moderators alerted and
the usual escalation), or presses "I need help now".
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError
from community.ratelimits import Limit, enforce
from community.realtime import room_group, send_event_on_commit, user_channel_group
from companion import engine
from companion.backends import BackendError, generate, generative_enabled
from companion.flows import load_flows
from companion.models import CompanionReply, PracticeSpace, ReplySource
from companion.safety import REPLY_MAX_CHARS, is_crisis, reply_problems
from companion.selectors import daily_cap, model_history, people_lines
from groups.models import Message, MessageKind
from groups.selectors import message_payloads
from groups.services import lock_room

__all__ = [
    "MINUTE_LIMIT",
    "answer_practice_messages",
    "answer_waiting_practice",
    "reply_after_commit",
    "store_companion_message",
]

logger = logging.getLogger(__name__)

# At most this many member messages answered per minute (a member tapping through a flow sends
# one every few seconds; the room's own limit, 10 in any 10 s, stops floods first); the daily
# cap is a setting.
MINUTE_LIMIT = Limit("companion", 30, 60)
DAY_SECONDS = 24 * 60 * 60
# One run answers at most this many waiting messages (the next run, or the sweep, goes on).
BATCH = 20
# A message waiting longer than this is picked up by the beat sweep.
SWEEP_AFTER = timedelta(seconds=30)
# Tries when another run stored replies first (each try re-reads what is waiting).
ATTEMPTS = 3
_NAMESPACE = uuid.UUID("4f6c3f52-5a8e-4c55-9a59-8f0c6f3f2d10")
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


# --- Storing ----------------------------------------------------------------------------------


def store_companion_message(
    space: PracticeSpace,
    *,
    text: str,
    source: str,
    now=None,
    intent: str = "",
    flow: str = "",
    step: str = "",
    about_others: bool = False,
) -> Message:
    """Store one companion reply as the room's next message and broadcast it after commit.

    Precondition: inside a transaction holding ``lock_room(space.room_id)``: the room's ``seq``
    is max + 1 under that lock, as ``groups.services.post_message`` numbers members' messages
    (which needs an author, so the companion's authorless replies are numbered here).
    """
    now = now or timezone.now()
    last = Message.objects.filter(group_id=space.room_id).aggregate(m=Max("seq"))["m"] or 0
    message = Message.objects.create(
        group_id=space.room_id,
        seq=last + 1,
        author=None,
        client_id=uuid.uuid5(_NAMESPACE, f"{space.room_id}:{last + 1}"),
        kind=MessageKind.COMPANION,
        body=text,
        created_at=now,
    )
    CompanionReply.objects.create(
        message=message,
        space=space,
        source=source,
        intent=intent,
        flow=flow,
        step=step,
        about_others=about_others,
        created_at=now,
    )
    payload = message_payloads([message])[0]
    send_event_on_commit(room_group(space.room_id), {"type": "chat.message", "message": payload})
    return message


# --- Working out the replies --------------------------------------------------------------------


@dataclass
class _Reply:
    text: str
    source: str
    intent: str = ""
    flow: str = ""
    step: str = ""
    about_others: bool = False


@dataclass
class _Plan:
    """What one run will store: replies, and the space's fields afterwards."""

    replies: list[_Reply] = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    alert_seq: int | None = None  # the crisis message a moderator may now see
    crisis_asked: bool = False


def _short(text: str) -> str | None:
    """A model's reply, made short: whitespace collapsed, and cut at the last sentence end that
    fits ``REPLY_MAX_CHARS``; None if no sentence fits."""
    text = " ".join(text.split())
    if len(text) <= REPLY_MAX_CHARS:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, REPLY_MAX_CHARS)]
    return text[: ends[-1]] if ends else None


def _from_model(space: PracticeSpace, message: Message, *, built_in: str) -> _Reply:
    """The model's reply to ``message``, or the built-in one when the model is down, slow,
    answers garbage, or says something the reply filter refuses."""
    try:
        raw = generate(
            name=space.user.display_name, history=model_history(space, up_to_seq=message.seq)
        )
    except BackendError as error:
        logger.warning("companion model gave no reply (%s); built-in reply used", error.code)
        return _Reply(built_in, ReplySource.FALLBACK)
    text = _short(raw)
    problems = reply_problems(text) if text else ["too_long"]
    if problems:
        logger.warning(
            "companion model reply refused (%s); built-in reply used", ",".join(problems)
        )
        return _Reply(built_in, ReplySource.FALLBACK)
    return _Reply(text, ReplySource.MODEL)


def _check_rate(user) -> None:
    enforce(
        (MINUTE_LIMIT, user.pk),
        (Limit("companion-day", daily_cap(), DAY_SECONDS), user.pk),
        message=_("The companion is resting for %(wait)s."),
    )


def _plan(space: PracticeSpace, waiting: list[Message]) -> _Plan:
    """The replies to ``waiting`` (the member's messages after ``answered_seq``, in order).
    Reads only, plus the model's answer: nothing is stored here."""
    lib = load_flows()
    user = space.user
    plan = _Plan()
    state = engine.resume_state(
        space.flow, space.step, space.slots, awaiting_consent=space.crisis_seq is not None
    )
    turn, crisis_seq, quiet_until = space.turns, space.crisis_seq, space.quiet_until
    draft = None
    now = timezone.now()
    for message in waiting:
        words = (
            f"{message.content_warning}\n{message.body}"
            if message.content_warning
            else message.body
        )
        crisis = is_crisis(words)
        if not crisis:
            if quiet_until is not None and quiet_until > now:
                continue  # resting: kept, not answered
            try:
                _check_rate(user)
            except DomainError as error:
                wait = int(error.details.get("retry_after", 60))
                quiet_until = now + timedelta(seconds=wait)
                key = "resting_today" if wait > 60 * 60 else "resting"
                plan.replies.append(_Reply(lib.say[key][0], ReplySource.BUILT_IN, intent=key))
                turn += 1
                continue
        outcome = engine.respond(
            state,
            message.body,
            name=user.display_name,
            turn=turn,
            crisis=crisis,
            people=lambda: people_lines(user),
        )
        if outcome.intent == "free" and generative_enabled():
            reply = _from_model(space, message, built_in=outcome.text)
        elif reply_problems(outcome.text):
            # Only the member's words quoted back can trip the filter in built-in copy (the
            # tests hold every phrasing to it): the plain menu line instead, quoting nothing.
            reply = _Reply(lib.say["menu"][0], ReplySource.BUILT_IN)
            outcome = replace(outcome, state=engine.State(), flow="", step="", save_draft=None)
        else:
            reply = _Reply(outcome.text, ReplySource.BUILT_IN)
        reply.intent, reply.flow, reply.step = outcome.intent, outcome.flow, outcome.step
        reply.about_others = outcome.about_others
        plan.replies.append(reply)
        if crisis:
            crisis_seq, plan.crisis_asked = message.seq, True
        elif outcome.alert_moderator:
            plan.alert_seq, crisis_seq = crisis_seq, None
        elif outcome.intent == "crisis_no":
            crisis_seq = None
        if outcome.save_draft:
            draft = outcome.save_draft
        state = outcome.state
        turn += 1
    plan.fields = {
        "answered_seq": waiting[-1].seq,
        "flow": state.flow,
        "step": state.step,
        "slots": dict(state.slots),
        "turns": turn,
        "crisis_seq": crisis_seq,
        "quiet_until": quiet_until,
    }
    if draft:
        plan.fields.update(
            draft=draft,
            draft_client_id=uuid.uuid4(),
            draft_saved_at=now,
            draft_posted_at=None,
            draft_posted_to=None,
        )
    return plan


def _alert_moderators(space: PracticeSpace, seq: int) -> None:
    """The member said yes: a crisis item with their message, as in any room (top of the queue,
    on-call moderators alerted after commit, escalated if nobody takes it)."""
    from moderation.services import open_item, record_audit

    message = Message.objects.filter(group_id=space.room_id, seq=seq).first()
    item = open_item(
        kind="crisis",
        group=space.room_id,
        message=message,
        member=space.user_id,
        rule_kinds=("crisis",),
    )
    record_audit(
        actor=space.user,
        action="help_requested",
        target_type="queue_item",
        target_id=item.pk,
        group_id=space.room_id,
        result="practice_consent",
    )
    logger.info("practice space %s: crisis item %s opened with consent", space.pk, item.pk)


def _send_support(space: PracticeSpace, *, key: str = "support_panel") -> None:
    """The crisis resources, to the member's own sockets in the practice room only, with words
    saying whether anyone was told (``key`` in common.toml)."""
    from community.selectors import crisis_resources

    send_event_on_commit(
        user_channel_group(space.user_id),
        {
            "type": "chat.support",
            "group_id": space.room_id,
            "message": load_flows().say[key][0],
            "resources": crisis_resources(),
        },
    )


def _store(space: PracticeSpace, plan: _Plan) -> int | None:
    """Store ``plan``'s replies if nobody answered meanwhile; None if someone did."""
    with transaction.atomic():
        lock_room(space.room_id)
        moved = (
            PracticeSpace.objects.select_for_update()
            .filter(pk=space.pk, answered_seq=space.answered_seq)
            .values_list("pk", flat=True)
            .first()
        )
        if moved is None:
            return None
        now = timezone.now()
        for reply in plan.replies:
            store_companion_message(
                space,
                text=reply.text,
                source=reply.source,
                now=now,
                intent=reply.intent,
                flow=reply.flow,
                step=reply.step,
                about_others=reply.about_others,
            )
        PracticeSpace.objects.filter(pk=space.pk).update(**plan.fields)
        if plan.alert_seq is not None:
            _alert_moderators(space, plan.alert_seq)
            _send_support(space, key="support_told")
        if plan.crisis_asked:
            _send_support(space)
    return len(plan.replies)


# --- Running ------------------------------------------------------------------------------------


def answer_practice_messages(room_id: int) -> int:
    """Answer every member message waiting in practice room ``room_id``. Returns how many
    replies were stored (0 when nothing was waiting, or the room is gone). Safe to run twice
    and concurrently: the replies of a run that finds it was overtaken are dropped, and it
    works out again what is still waiting."""
    for _attempt in range(ATTEMPTS):
        space = PracticeSpace.objects.select_related("user").filter(room_id=room_id).first()
        if space is None:
            return 0
        waiting = list(
            Message.objects.filter(
                group_id=room_id,
                author_id=space.user_id,
                kind=MessageKind.TEXT,
                seq__gt=space.answered_seq,
                deleted_at__isnull=True,
            ).order_by("seq")[:BATCH]
        )
        if not waiting:
            return 0
        stored = _store(space, _plan(space, waiting))
        if stored is not None:
            logger.info("practice space %s: %d companion replies", space.pk, stored)
            return stored
    logger.info("practice room %s: overtaken %d times; the sweep goes on", room_id, ATTEMPTS)
    return 0


def reply_after_commit(room_id: int) -> None:
    """Called once a member's message in practice room ``room_id`` committed: answer it now
    (built-in) or in Celery (a model is on). Never raises: the member's message is stored
    already, and the beat sweep answers anything a failure here left waiting."""
    if generative_enabled():
        from companion.tasks import task_answer_practice_messages

        try:
            task_answer_practice_messages.delay(room_id=room_id)
        except Exception:
            logger.warning(
                "could not enqueue a companion reply; the sweep will answer", exc_info=True
            )
        return
    try:
        answer_practice_messages(room_id)
    except Exception:
        logger.exception("companion reply failed in room %s; the sweep will retry", room_id)


def answer_waiting_practice(*, now=None) -> int:
    """The beat's safety net: answer every practice room with a member message waiting longer
    than ``SWEEP_AFTER``. Returns how many replies were stored."""
    now = now or timezone.now()
    waiting = Message.objects.filter(
        group_id=OuterRef("room_id"),
        author_id=OuterRef("user_id"),
        kind=MessageKind.TEXT,
        seq__gt=OuterRef("answered_seq"),
        deleted_at__isnull=True,
        created_at__lte=now - SWEEP_AFTER,
    )
    rooms = list(
        PracticeSpace.objects.filter(Exists(waiting)).values_list("room_id", flat=True)[:500]
    )
    return sum(answer_practice_messages(room_id) for room_id in rooms)
