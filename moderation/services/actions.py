"""What moderators do with a claimed queue item.

Every action: needs a reason; needs the actor to hold the claim on the item (an unclaimed item,
someone else's, or a closed one is refused and nothing changes); is allowed only where the
item's kind offers it (``moderation.selectors.ACTIONS_BY_KIND``: a crisis item never offers a
hide, warning, mute, removal or ban); writes a ``ModerationAction`` and an ``AuditEntry`` in the
same transaction; closes the item; and tells the member, with the reason, through
``community.services.notify``. Writes to a message take the room's lock first
(``groups.services.lock_room``) and then ``broadcast_message_update``, so every open room sees
the change within seconds.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from community.errors import DomainError, PermissionDenied
from community.realtime import MEMBERSHIP_CHANGED, send_event_on_commit, user_channel_group
from community.services.sessions import end_every_session
from moderation.models import (
    APPEAL_MAX_CHARS,
    ActionKind,
    Appeal,
    AppealKind,
    ItemKind,
    ItemStatus,
    ModerationAction,
    QueueItem,
    Report,
    ReportOutcome,
)
from moderation.selectors import available_actions, ensure_can_moderate_item
from moderation.services.audit import record_audit
from moderation.services.queue import open_item

logger = logging.getLogger(__name__)

__all__ = [
    "MUTE_MAX",
    "approve_held",
    "ban_member",
    "dismiss_report",
    "hide_message",
    "mute_member",
    "reinstate_member",
    "reject_held",
    "remove_member",
    "resolve_item",
    "restore_message",
    "submit_appeal",
    "warn_member",
]

REASON_MAX_CHARS = 1000
MUTE_MAX = timedelta(days=30)


# --- The checks every action makes ------------------------------------------------------------


def _clean_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise DomainError(
            "Please write a short reason: the member reads it, and it goes in the audit log.",
            code="reason_required",
        )
    reason = reason.strip()
    if len(reason) > REASON_MAX_CHARS:
        raise DomainError(
            f"Please keep the reason under {REASON_MAX_CHARS} characters.", code="reason_too_long"
        )
    return reason


def _take(item: QueueItem, *, actor, action: str, reason) -> tuple[QueueItem, str]:
    """Check the action may happen (before any write), then lock and re-read the item.

    Precondition: inside a transaction that already took the room's lock if it writes a message.
    """
    reason = _clean_reason(reason)
    ensure_can_moderate_item(actor, item)
    current = (
        QueueItem.objects.select_for_update(of=("self",)).select_related("message").get(pk=item.pk)
    )
    if current.status == ItemStatus.CLOSED:
        raise DomainError("This item is already closed; nothing was changed.", code="item_closed")
    if current.status != ItemStatus.CLAIMED or current.assignee_id != actor.pk:
        raise DomainError(
            "Please claim this item before acting on it; someone else may be looking after it.",
            code="not_claimed",
        )
    if action not in available_actions(current):
        if current.kind == ItemKind.CRISIS:
            raise DomainError(
                "Someone sharing distress is never hidden, warned, muted or removed for it. "
                "Reach out to them kindly, then resolve the item.",
                code="crisis_no_sanction",
            )
        raise DomainError("That action doesn't fit this item.", code="action_not_available")
    return current, reason


def _close(item: QueueItem, *, actor, resolution: str) -> None:
    closed = QueueItem.objects.filter(pk=item.pk, status=ItemStatus.CLAIMED, assignee=actor).update(
        status=ItemStatus.CLOSED, closed_at=timezone.now(), resolution=resolution
    )
    if closed != 1:  # can't happen under the row lock; refuse rather than half-act
        raise DomainError("This item changed meanwhile; nothing was changed.", code="item_changed")
    item.status, item.resolution = ItemStatus.CLOSED, resolution
    # An erased member's words this item kept are erased once it (and any other open item
    # needing them) has closed, after this commits (community.services.data).
    from community.services.data import finish_erasures_after_commit

    finish_erasures_after_commit()


def _record(
    kind: str, item: QueueItem, *, actor, reason: str, member_id=None, message=None, ends_at=None
) -> ModerationAction:
    action = ModerationAction.objects.create(
        kind=kind,
        item=item,
        actor=actor,
        member_id=member_id,
        group_id=item.group_id,
        message=message,
        reason=reason,
        ends_at=ends_at,
    )
    target_type, target_id = (
        ("message", message.pk) if message is not None else ("member", member_id)
    )
    if target_id is None:
        target_type, target_id = "queue_item", item.pk
    record_audit(
        actor=actor,
        action=kind,
        target_type=target_type,
        target_id=target_id,
        group_id=item.group_id,
        reason=reason,
    )
    return action


def _sync_reminders(member_id: int, group) -> None:
    """A member left or came back: their meeting reminders for the group follow."""
    from groups.services.reminders import sync_member_reminders

    member = get_user_model().objects.filter(pk=member_id).first()
    if member is not None:
        sync_member_reminders(member, group=group)


def _group_name(item: QueueItem) -> str:
    return item.group.name if item.group_id else "the community"


def _notify(user_id, *, title: str, body: str, dedupe: str, url: str = "") -> None:
    from community.services import notify

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    if user is None:
        return
    # By default the link leads to where the member reads the reason and can reply to it.
    url = url or reverse("moderation:mine")
    notify(user, kind="moderation_action", title=title, body=body, url=url, dedupe_key=dedupe)


def _settle_reports(item: QueueItem, *, outcome: str, message=None) -> None:
    """Tell each reporter how their report ended (never who acted or what exactly happened)."""
    from community.services import notify

    reports = Report.objects.filter(outcome=ReportOutcome.PENDING)
    if message is not None:
        reports = reports.filter(message=message)
    elif item.report_id is not None:
        reports = reports.filter(pk=item.report_id)
    else:
        return
    now = timezone.now()
    for report in reports.select_related("reporter"):
        Report.objects.filter(pk=report.pk, outcome=ReportOutcome.PENDING).update(
            outcome=outcome, resolved_at=now
        )
        title = (
            "Thank you for your report: a moderator looked at it and took action"
            if outcome == ReportOutcome.ACTION_TAKEN
            else "Thank you for your report: a moderator looked at it and took no action"
        )
        notify(
            report.reporter,
            kind="report_outcome",
            title=title,
            body="Thank you for helping keep the group a safe place.",
            dedupe_key=f"report-outcome:{report.pk}",
        )


def _lock_room(group_id) -> None:
    from groups.services import lock_room

    if group_id is not None:
        lock_room(group_id)


def _room_lock_for(item: QueueItem) -> None:
    group_id = QueueItem.objects.filter(pk=item.pk).values_list("group_id", flat=True).first()
    _lock_room(group_id)


def _member_id(item: QueueItem) -> int | None:
    if item.member_id is not None:
        return item.member_id
    return item.message.author_id if item.message_id else None


# --- Messages ---------------------------------------------------------------------------------


def _set_message(item: QueueItem, **fields):
    from groups.models import Message
    from groups.services import broadcast_message_update

    message = Message.objects.select_related("author").get(pk=item.message_id)
    Message.objects.filter(pk=message.pk).update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
    broadcast_message_update(message)
    return message


def _act_on_message(
    item: QueueItem,
    kind: str,
    *,
    actor,
    reason: str,
    fields: dict,
    title: str,
    body: str,
    settles_reports: bool = False,
) -> ModerationAction:
    """Change the item's message, record and close, and tell its author.

    Precondition: inside the action's transaction, holding the room lock and the item's claim
    (``_take``). ``title`` and ``body`` may use ``{group}`` and ``{reason}``.
    """
    message = _set_message(item, **fields)
    action = _record(
        kind, item, actor=actor, reason=reason, member_id=message.author_id, message=message
    )
    _close(item, actor=actor, resolution=kind)
    if settles_reports:
        _settle_reports(item, outcome=ReportOutcome.ACTION_TAKEN, message=message)
    words = {"group": _group_name(item), "reason": reason}
    _notify(
        message.author_id,
        title=title.format(**words),
        body=body.format(**words),
        dedupe=f"moderation:{action.pk}",
    )
    return action


_APPEAL_HINT = "\nIf you see it differently, you can reply with an appeal."


@transaction.atomic
def hide_message(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Hide the item's message: kept in the database, members see "hidden by a moderator"."""
    _room_lock_for(item)
    item, reason = _take(item, actor=actor, action="hide", reason=reason)
    if item.message_id is None:
        raise DomainError("This item has no message to hide.", code="no_message")
    return _act_on_message(
        item,
        ActionKind.HIDE,
        actor=actor,
        reason=reason,
        fields={"hidden_at": timezone.now()},
        title="A moderator hid one of your messages in {group}",
        body="The reason they gave: {reason}" + _APPEAL_HINT,
        settles_reports=True,
    )


@transaction.atomic
def restore_message(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Show a hidden message again (from an appeal about it)."""
    _room_lock_for(item)
    item, reason = _take(item, actor=actor, action="restore", reason=reason)
    if item.message_id is None or item.message.hidden_at is None:
        raise DomainError("This item has no hidden message to restore.", code="not_hidden")
    return _act_on_message(
        item,
        ActionKind.RESTORE,
        actor=actor,
        reason=reason,
        fields={"hidden_at": None, "held_at": None},
        title="Your message in {group} is shown again",
        body="A moderator restored it. Their note: {reason}",
    )


@transaction.atomic
def approve_held(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Let a held message through: the room sees it now, in its place."""
    _room_lock_for(item)
    item, reason = _take(item, actor=actor, action="approve", reason=reason)
    return _act_on_message(
        item,
        ActionKind.APPROVE,
        actor=actor,
        reason=reason,
        fields={"held_at": None},
        title="Your message in {group} is now shown to the group",
        body="A moderator looked at it and let it through. Their note: {reason}",
    )


@transaction.atomic
def reject_held(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Keep a held message back: it stays in the database, hidden; the room never sees it."""
    _room_lock_for(item)
    item, reason = _take(item, actor=actor, action="reject", reason=reason)
    return _act_on_message(
        item,
        ActionKind.REJECT,
        actor=actor,
        reason=reason,
        fields={"hidden_at": timezone.now()},
        title="A moderator kept one of your messages in {group} back",
        body="The reason they gave: {reason}" + _APPEAL_HINT,
    )


# --- Members ----------------------------------------------------------------------------------


def _needs_member(item: QueueItem) -> int:
    member_id = _member_id(item)
    if member_id is None:
        raise DomainError("This item isn't about a member.", code="no_member")
    return member_id


@transaction.atomic
def warn_member(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """A private note to the member; nothing else changes."""
    item, reason = _take(item, actor=actor, action="warn", reason=reason)
    member_id = _needs_member(item)
    action = _record(ActionKind.WARN, item, actor=actor, reason=reason, member_id=member_id)
    _close(item, actor=actor, resolution=ActionKind.WARN)
    _settle_reports(item, outcome=ReportOutcome.ACTION_TAKEN, message=item.message)
    _notify(
        member_id,
        title=f"A note from a moderator of {_group_name(item)}",
        body=f"{reason}\nYou're welcome to reply with what happened from your side.",
        dedupe=f"moderation:{action.pk}",
    )
    return action


def _membership_change(item: QueueItem, member_id: int, **fields) -> None:
    from groups.models import Membership, MembershipStatus

    if item.group_id is None:
        raise DomainError("This item isn't about a group.", code="no_group")
    updated = Membership.objects.filter(
        group_id=item.group_id, user_id=member_id, status=MembershipStatus.ACTIVE
    ).update(**fields)
    if updated != 1:
        raise DomainError("They are no longer a member of this group.", code="not_member")
    send_event_on_commit(
        user_channel_group(member_id), {"type": MEMBERSHIP_CHANGED, "group_id": item.group_id}
    )


@transaction.atomic
def mute_member(item: QueueItem, *, actor, reason: str, duration: timedelta) -> ModerationAction:
    """Pause the member's posting in the item's group for ``duration``; it ends by itself."""
    if not isinstance(duration, timedelta) or duration <= timedelta(0):
        raise DomainError(
            "A mute needs an end: please choose how long it lasts.", code="bad_mute_duration"
        )
    if duration > MUTE_MAX:
        raise DomainError("A mute can last at most 30 days.", code="bad_mute_duration")
    item, reason = _take(item, actor=actor, action="mute", reason=reason)
    member_id = _needs_member(item)
    ends_at = timezone.now() + duration
    _membership_change(item, member_id, muted_until=ends_at)
    action = _record(
        ActionKind.MUTE, item, actor=actor, reason=reason, member_id=member_id, ends_at=ends_at
    )
    _close(item, actor=actor, resolution=ActionKind.MUTE)
    _settle_reports(item, outcome=ReportOutcome.ACTION_TAKEN, message=item.message)
    _notify(
        member_id,
        title=f"Posting in {_group_name(item)} is paused for you for a while",
        body=f"The reason a moderator gave: {reason}\nYou can still read along, and it ends by "
        "itself. You can reply with an appeal or a note about what happened.",
        dedupe=f"moderation:{action.pk}",
    )
    return action


@transaction.atomic
def remove_member(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Remove the member from the item's group; their open sockets close within seconds, and
    the freed seat is offered to the first person on the waitlist."""
    from groups.models import Group, MembershipStatus
    from groups.services import offer_free_seats

    # The group's row lock first (as every seat-changing path takes it), then the item's.
    _room_lock_for(item)
    item, reason = _take(item, actor=actor, action="remove", reason=reason)
    member_id = _needs_member(item)
    _membership_change(item, member_id, status=MembershipStatus.REMOVED, left_at=timezone.now())
    group = Group.objects.get(pk=item.group_id)
    offer_free_seats(group)  # precondition met: we hold its lock
    _sync_reminders(member_id, group)
    action = _record(ActionKind.REMOVE, item, actor=actor, reason=reason, member_id=member_id)
    _close(item, actor=actor, resolution=ActionKind.REMOVE)
    _settle_reports(item, outcome=ReportOutcome.ACTION_TAKEN, message=item.message)
    _notify(
        member_id,
        title=f"You've been removed from {_group_name(item)}",
        body=f"The reason a moderator gave: {reason}\nYou can reply with an appeal or a note "
        "about what happened; a facilitator reads each one.",
        dedupe=f"moderation:{action.pk}",
    )
    return action


@transaction.atomic
def ban_member(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Site moderators only: the account is deactivated (no sign-in), every session it has ends
    and every open socket of the member closes once this commits
    (``community.services.sessions.end_every_session``)."""
    if not actor.is_staff:
        raise PermissionDenied(
            "Only site moderators can ban someone from the site.", code="not_staff"
        )
    item, reason = _take(item, actor=actor, action="ban", reason=reason)
    member_id = _needs_member(item)
    User = get_user_model()
    if User.objects.filter(pk=member_id, is_staff=True).exists():
        raise DomainError("A site moderator can't be banned here.", code="cannot_ban_staff")
    User.objects.filter(pk=member_id).update(is_active=False)
    end_every_session(User(pk=member_id), reason="banned")
    action = _record(ActionKind.BAN, item, actor=actor, reason=reason, member_id=member_id)
    _close(item, actor=actor, resolution=ActionKind.BAN)
    _settle_reports(item, outcome=ReportOutcome.ACTION_TAKEN, message=item.message)
    _notify(
        member_id,
        title="Your account has been closed by a moderator",
        body=f"The reason they gave: {reason}",
        dedupe=f"moderation:{action.pk}",
    )
    return action


# --- Closing without a sanction ---------------------------------------------------------------


@transaction.atomic
def dismiss_report(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Close a report with no action; the reporter is told it was looked at."""
    item, reason = _take(item, actor=actor, action="dismiss", reason=reason)
    action = _record(ActionKind.DISMISS, item, actor=actor, reason=reason)
    _close(item, actor=actor, resolution=ActionKind.DISMISS)
    _settle_reports(item, outcome=ReportOutcome.NO_ACTION)
    return action


@transaction.atomic
def resolve_item(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """Close a crisis item (after reaching out), a flag that needs nothing, or an appeal
    without reinstating. Nothing happens to the member."""
    item, reason = _take(item, actor=actor, action="resolve", reason=reason)
    action = _record(ActionKind.RESOLVE, item, actor=actor, reason=reason)
    _close(item, actor=actor, resolution=ActionKind.RESOLVE)
    if item.kind == ItemKind.APPEAL:
        _notify(
            _member_id(item),
            title="A moderator read your note",
            body=f"Their reply: {reason}",
            dedupe=f"moderation:{action.pk}",
        )
    return action


# --- Rupture and repair -----------------------------------------------------------------------


@transaction.atomic
def submit_appeal(
    action: ModerationAction, *, member, text: str, kind: str = AppealKind.APPEAL
) -> Appeal:
    """A warned, muted, removed (or hidden) member replies: an appeal or a repair note ("what
    happened, what I'd do differently"). It enters the queue."""
    if action.member_id != member.pk or action.kind not in (
        ActionKind.WARN,
        ActionKind.MUTE,
        ActionKind.REMOVE,
        ActionKind.HIDE,
        ActionKind.REJECT,
    ):
        raise PermissionDenied(
            "You can reply only to a moderation action about you.", code="not_yours"
        )
    if kind not in AppealKind.values:
        raise DomainError("Please choose an appeal or a repair note.", code="bad_kind")
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise DomainError("Please write a few words about what happened.", code="empty_appeal")
    text = text.strip()
    if len(text) > APPEAL_MAX_CHARS:
        raise DomainError(
            f"Please keep it under {APPEAL_MAX_CHARS} characters.", code="appeal_too_long"
        )
    if QueueItem.objects.filter(
        kind=ItemKind.APPEAL,
        appeal__action=action,
        status__in=[ItemStatus.OPEN, ItemStatus.CLAIMED],
    ).exists():
        raise DomainError(
            "Your note about this is already with the moderators.", code="appeal_pending"
        )
    appeal = Appeal.objects.create(member=member, action=action, kind=kind, text=text)
    open_item(
        kind=ItemKind.APPEAL,
        group=action.group_id,
        message=action.message,
        appeal=appeal,
        member=member,
    )
    record_audit(
        actor=member,
        action=f"submit_{kind}",
        target_type="moderation_action",
        target_id=action.pk,
        group_id=action.group_id,
    )
    return appeal


@transaction.atomic
def reinstate_member(item: QueueItem, *, actor, reason: str) -> ModerationAction:
    """From an appeal: welcome the member back (a removal undone, a mute lifted) with a note."""
    from groups.models import Membership, MembershipStatus

    item, welcome = _take(item, actor=actor, action="reinstate", reason=reason)
    member_id = _needs_member(item)
    if item.group_id is None:
        raise DomainError("This item isn't about a group.", code="no_group")
    now = timezone.now()
    changed = Membership.objects.filter(
        group_id=item.group_id,
        user_id=member_id,
        status__in=[MembershipStatus.ACTIVE, MembershipStatus.REMOVED],
    ).update(status=MembershipStatus.ACTIVE, muted_until=None, left_at=None)
    if changed != 1:
        raise DomainError("They can't be welcomed back to this group from here.", code="not_member")
    _sync_reminders(member_id, item.group)
    send_event_on_commit(
        user_channel_group(member_id), {"type": MEMBERSHIP_CHANGED, "group_id": item.group_id}
    )
    action = _record(ActionKind.REINSTATE, item, actor=actor, reason=welcome, member_id=member_id)
    _close(item, actor=actor, resolution=ActionKind.REINSTATE)
    _notify(
        member_id,
        title=f"Welcome back to {_group_name(item)}",
        body=welcome,
        dedupe=f"moderation:{action.pk}",
        url=reverse("groups:detail", kwargs={"slug": item.group.slug}) if item.group_id else "",
    )
    logger.info("member %s reinstated in group %s at %s", member_id, item.group_id, now.isoformat())
    return action
