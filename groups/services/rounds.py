"""Go-around rounds: a facilitator asks a prompt, and the members here take turns, one at a
time, to share a few words or pass.

The round lives in the database (``Round``, ``RoundTurn``), never in a socket, so it survives
reconnects and server restarts. Every change happens in one transaction holding the room's
lock (``lock_room``), so round changes and chat messages are ordered together; each turn change
is a conditional update that must touch exactly one row, so two people acting at once (a pass
and a skip, a double tap) change the turn once and the other is told kindly that nothing
changed. Every change bumps ``Round.version`` and tells the room after commit (``round.state``).

Rules:
- Only an active facilitator starts, skips or ends a round; one active round per group (a
  database constraint).
- Who gets a turn: the members here now who show their presence, in join order or in the
  facilitator's ``order`` (membership ids). Members who hid their presence get no turn, since
  listing them would tell the room they are here.
- A pass asks no reason and carries no penalty: it shows as "passed", like a share shows as
  "shared". A share is a chat message, posted through ``post_message`` (same rules, idempotent
  by ``client_id``), linked to the turn in the same transaction.
- When no waiting turn remains the round ends by itself.
- A member who leaves (or is removed) mid-round: a waiting turn of theirs is skipped when it
  comes; a current one is skipped right after their membership changes through a service, or
  at the next pass or share in the round (and the facilitator can always skip it).
"""

from __future__ import annotations

import logging
import uuid

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.realtime import room_group, send_event_on_commit
from community.selectors import blocked_by_ids
from groups.models import (
    ROUND_PROMPT_MAX_CHARS,
    Group,
    Membership,
    MembershipStatus,
    Message,
    Role,
    Round,
    RoundState,
    RoundTurn,
    TurnStatus,
)
from groups.selectors.rounds import round_participants, round_payload
from groups.services.chat import PostResult, _membership, _storable, lock_room, post_message

__all__ = [
    "ROUND_EVENT",
    "end_round",
    "pass_turn",
    "share_turn",
    "skip_turn",
    "start_round",
]

logger = logging.getLogger(__name__)

# The channel-layer event type (the consumer's ``round_state`` handler).
ROUND_EVENT = "round.state"


# --- Rules ------------------------------------------------------------------------------------


def _not_your_turn() -> DomainError:
    return DomainError(_("It isn't your turn just now, so nothing changed."), code="not_your_turn")


def _facilitator(group: Group, actor) -> Membership:
    membership = _membership(group, actor)
    if membership.role != Role.FACILITATOR:
        raise PermissionDenied(
            _(
                "Rounds are started and guided by the group's facilitators. You're welcome to "
                "take part when one begins."
            ),
            code="not_facilitator",
        )
    return membership


def _clean_prompt(prompt) -> str:
    if prompt is not None and not (isinstance(prompt, str) and _storable(prompt)):
        raise DomainError(_("The prompt needs to be a few words of text."), code="bad_prompt")
    prompt = " ".join((prompt or "").split())
    if not prompt:
        raise DomainError(
            _(
                "A round needs a prompt: a few words for everyone to answer, like “One word "
                "for how you arrived today”."
            ),
            code="empty_prompt",
        )
    if len(prompt) > ROUND_PROMPT_MAX_CHARS:
        raise DomainError(
            _("Please keep the prompt under %(limit)s characters; short prompts are easier.")
            % {"limit": ROUND_PROMPT_MAX_CHARS},
            code="prompt_too_long",
        )
    return prompt


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _clean_order(order) -> list[int]:
    if order is None:
        return []
    if not isinstance(order, list) or not all(_is_id(i) for i in order):
        raise DomainError(
            _("The order needs to list the people here, each once."), code="bad_order"
        )
    if len(set(order)) != len(order):
        raise DomainError(
            _("The order names someone twice; each person takes one turn."), code="bad_order"
        )
    return order


def _check_round_id(round_id) -> None:
    if round_id is not None and not _is_id(round_id):
        raise DomainError(
            _("We couldn't tell which round that was for. Reloading the page will fix it."),
            code="bad_round",
        )


def _active_round(group: Group, round_id=None) -> Round:
    """The group's active round, or a kind refusal. With ``round_id`` (the round the person was
    looking at) a round that has since ended, or been replaced by a new one, is refused too."""
    _check_round_id(round_id)
    round_ = Round.objects.filter(group=group, state=RoundState.ACTIVE).first()
    if round_ is not None and round_id in (None, round_.pk):
        return round_
    if round_id is not None:
        raise DomainError(_("That round has already ended."), code="round_ended")
    raise DomainError(_("There's no round going just now."), code="no_round")


def _current_turn(round_: Round) -> RoundTurn | None:
    return RoundTurn.objects.filter(round=round_, status=TurnStatus.CURRENT).first()


def _active_user_ids(group: Group) -> set[int]:
    return set(
        Membership.objects.filter(
            group=group, status=MembershipStatus.ACTIVE, user__is_active=True
        ).values_list("user_id", flat=True)
    )


# --- Moving the round on ----------------------------------------------------------------------


def _finish(turn: RoundTurn, status: str, *, now, error: DomainError, **fields) -> None:
    """End the current ``turn`` as ``status``; refused with ``error`` unless it is still current
    (someone else's action got there first)."""
    updated = RoundTurn.objects.filter(pk=turn.pk, status=TurnStatus.CURRENT).update(
        status=status, finished_at=now, **fields
    )
    if updated != 1:
        raise error


def _advance(round_: Round, *, now, active_ids: set[int]) -> None:
    """Make the next waiting turn current; end the round when none remains.

    Precondition: under the room lock, and the round has no current turn. Waiting turns of
    members who have left are skipped on the way.
    """
    waiting = RoundTurn.objects.filter(round=round_, status=TurnStatus.WAITING).order_by("position")
    for turn in waiting:
        if turn.user_id not in active_ids:
            RoundTurn.objects.filter(pk=turn.pk, status=TurnStatus.WAITING).update(
                status=TurnStatus.SKIPPED, finished_at=now
            )
            continue
        if (
            RoundTurn.objects.filter(pk=turn.pk, status=TurnStatus.WAITING).update(
                status=TurnStatus.CURRENT
            )
            == 1
        ):
            return
    Round.objects.filter(pk=round_.pk, state=RoundState.ACTIVE).update(
        state=RoundState.ENDED, ended_at=now
    )


def _settle(round_: Round, *, now) -> tuple[bool, set[int]]:
    """Move past a current turn whose member has left. Returns (changed, active user ids)."""
    active_ids = _active_user_ids(round_.group)
    current = _current_turn(round_)
    if current is None or current.user_id in active_ids:
        return False, active_ids
    if (
        RoundTurn.objects.filter(pk=current.pk, status=TurnStatus.CURRENT).update(
            status=TurnStatus.SKIPPED, finished_at=now
        )
        == 1
    ):
        _advance(round_, now=now, active_ids=active_ids)
        return True, active_ids
    return False, active_ids


def _changed(round_: Round, *, broadcast: bool = True) -> dict:
    """Record a change: the next ``version``, and the room told after commit.

    Returns the broadcast payload (``groups.selectors.round_payload``).
    """
    Round.objects.filter(pk=round_.pk).update(version=F("version") + 1)
    round_.refresh_from_db()
    payload = round_payload(round_.group_id, round_)
    if broadcast:
        _broadcast(round_.group_id, payload)
    return payload


def _broadcast(group_id: int, payload: dict) -> None:
    send_event_on_commit(room_group(group_id), {"type": ROUND_EVENT, "round": payload})


# --- Starting and ending ----------------------------------------------------------------------


def start_round(group: Group, *, actor, prompt: str, order: list[int] | None = None) -> Round:
    """Start a round with ``prompt``; the first turn is current at once.

    Preconditions checked here: ``actor`` is an active facilitator of the group, the group is
    open, no round is active, and someone is here. Who takes a turn: the members in the room
    now who show their presence (hidden members get no turn: listing them would reveal them),
    the facilitator included if they are. ``order`` is an optional list of membership ids
    (``groups.selectors.round_candidates``) setting the order; anyone here it doesn't name
    (who arrived after the facilitator's list was drawn) follows in join order. Naming someone
    who isn't here, or isn't a member, is refused.
    """
    prompt = _clean_prompt(prompt)
    order = _clean_order(order)
    with transaction.atomic():
        lock_room(group.pk)
        if _facilitator(group, actor).group.is_archived:
            raise DomainError(
                _("This group has closed. Its room stays here to read, but it's quiet now."),
                code="archived",
            )
        if Round.objects.filter(group=group, state=RoundState.ACTIVE).exists():
            raise DomainError(
                _(
                    "A round is already going. It can be ended, or left to finish, before a "
                    "new one starts."
                ),
                code="round_active",
            )
        # Whoever blocked the facilitator is, to them, as if hidden (see
        # ``round_candidates``): like a hidden member, they get no turn in the rounds that
        # facilitator starts, so the round never shows the facilitator someone their list
        # left out.
        hidden_from_actor = blocked_by_ids(actor.pk)
        participants = [m for m in round_participants(group) if m.user_id not in hidden_from_actor]
        by_id = {m.pk: m for m in participants}
        if any(i not in by_id for i in order):
            raise DomainError(
                _(
                    "Someone in that order isn't here in the room right now, so the round "
                    "didn't start. Please check the list and try again."
                ),
                code="order_not_present",
            )
        ordered = [by_id[i] for i in order] + [m for m in participants if m.pk not in order]
        if not ordered:
            raise DomainError(
                _(
                    "Nobody is showing as here in the room just now, so there's no one to go "
                    "around to."
                ),
                code="nobody_present",
            )
        now = timezone.now()
        try:
            with transaction.atomic():  # a savepoint: the constraint backs the check above
                round_ = Round.objects.create(
                    group=group, prompt=prompt, started_by=actor, created_at=now
                )
        except IntegrityError:
            raise DomainError(_("A round is already going."), code="round_active") from None
        RoundTurn.objects.bulk_create(
            RoundTurn(
                round=round_,
                user_id=m.user_id,
                position=position,
                status=TurnStatus.CURRENT if position == 1 else TurnStatus.WAITING,
            )
            for position, m in enumerate(ordered, start=1)
        )
        _broadcast(group.pk, round_payload(group.pk, round_))
    logger.info("Round started: group=%s round=%s turns=%s", group.pk, round_.pk, len(ordered))
    return round_


def end_round(group: Group, *, actor, round_id: int | None = None) -> Round:
    """End the active round now (facilitators only). Turns not yet taken stay "waiting"."""
    with transaction.atomic():
        lock_room(group.pk)
        _facilitator(group, actor)
        round_ = _active_round(group, round_id)
        now = timezone.now()
        if (
            Round.objects.filter(pk=round_.pk, state=RoundState.ACTIVE).update(
                state=RoundState.ENDED, ended_at=now
            )
            != 1
        ):
            raise DomainError(_("That round has already ended."), code="round_ended")
        # An ended round has no current turn: the one in progress simply wasn't finished.
        RoundTurn.objects.filter(round=round_, status=TurnStatus.CURRENT).update(
            status=TurnStatus.WAITING
        )
        _changed(round_)
    return round_


# --- Turns ------------------------------------------------------------------------------------


def pass_turn(group: Group, *, user, round_id: int | None = None) -> Round:
    """Pass one's own turn: no reason asked, shown to others simply as "passed"."""
    with transaction.atomic():
        lock_room(group.pk)
        _membership(group, user)
        round_ = _active_round(group, round_id)
        now = timezone.now()
        _settled, active_ids = _settle(round_, now=now)
        turn = _current_turn(round_)
        if turn is None or turn.user_id != user.pk:
            raise _not_your_turn()
        _finish(turn, TurnStatus.PASSED, now=now, error=_not_your_turn())
        _advance(round_, now=now, active_ids=active_ids)
        _changed(round_)
    return round_


def skip_turn(
    group: Group, *, actor, round_id: int | None = None, position: int | None = None
) -> Round:
    """Skip whoever's turn it is (facilitators only). ``position`` is the turn the facilitator
    saw as current: if the round has moved on since, nothing is skipped (a double click
    skips one turn, not two)."""
    if position is not None and not _is_id(position):
        raise DomainError(
            _("We couldn't tell which turn that was for. Reloading the page will fix it."),
            code="bad_turn",
        )
    with transaction.atomic():
        lock_room(group.pk)
        _facilitator(group, actor)
        round_ = _active_round(group, round_id)
        moved_on = DomainError(
            _("That turn has already moved on, so nothing was skipped."), code="turn_moved_on"
        )
        turn = _current_turn(round_)
        if turn is None or (position is not None and turn.position != position):
            raise moved_on
        now = timezone.now()
        _finish(turn, TurnStatus.SKIPPED, now=now, error=moved_on)
        _advance(round_, now=now, active_ids=_active_user_ids(group))
        _changed(round_)
    return round_


def share_turn(
    group: Group,
    *,
    user,
    client_id,
    body: str,
    content_warning: str | None = "",
    round_id: int | None = None,
) -> PostResult:
    """Take one's turn by sharing a message: posted to the room like any message (same rules,
    screening and rate limit), and the turn marked shared with it in the same transaction.

    Idempotent by ``client_id``: a retry of a stored share stores nothing and changes no turn
    (it returns the original, ``created`` False). Not one's turn: refused, nothing stored.
    """
    if not _already_stored(group, user, client_id):
        # An early, lock-free refusal, so a share out of turn costs no rate-limit slot. The
        # decisive check is repeated under the lock below.
        _membership(group, user)
        round_ = _active_round(group, round_id)
        turn = _current_turn(round_)
        if turn is None or (turn.user_id != user.pk and turn.user_id in _active_user_ids(group)):
            raise _not_your_turn()
    changed: list[dict] = []

    def mark_shared(message: Message) -> None:
        # Inside post_message's transaction, under the room lock it took.
        round_ = _active_round(group, round_id)
        now = timezone.now()
        _settled, active_ids = _settle(round_, now=now)
        turn = _current_turn(round_)
        if turn is None or turn.user_id != user.pk:
            raise _not_your_turn()
        _finish(turn, TurnStatus.SHARED, now=now, error=_not_your_turn(), message=message)
        _advance(round_, now=now, active_ids=active_ids)
        changed.append(_changed(round_, broadcast=False))

    result = post_message(
        group,
        author=user,
        client_id=client_id,
        body=body,
        content_warning=content_warning,
        on_store=mark_shared,
    )
    if changed:
        # Told after the message's own broadcast, so readers see the words before the turn
        # moves on.
        _broadcast(group.pk, changed[0])
    return result


def _already_stored(group: Group, user, client_id) -> bool:
    try:
        client_id = uuid.UUID(str(client_id))
    except (ValueError, TypeError, AttributeError):
        return False  # post_message refuses it kindly
    return Message.objects.filter(group=group, author=user, client_id=client_id).exists()


# --- A member leaving mid-round -----------------------------------------------------------------


def _move_past_departed(group_id: int) -> None:
    """After a membership ended: if it was that member's turn, move the round on."""
    try:
        with transaction.atomic():
            lock_room(group_id)
            round_ = Round.objects.filter(group_id=group_id, state=RoundState.ACTIVE).first()
            if round_ is None:
                return
            settled, _active_ids = _settle(round_, now=timezone.now())
            if settled:
                _changed(round_)
    except Exception:
        # The membership change is committed; the next pass, share or skip moves the round on.
        logger.warning("Could not move group %s's round past a departed member.", group_id)


@receiver(post_save, sender=Membership, dispatch_uid="rounds_member_departed")
def _membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    if created or instance.status == MembershipStatus.ACTIVE:
        return
    group_id = instance.group_id
    transaction.on_commit(lambda: _move_past_departed(group_id))
