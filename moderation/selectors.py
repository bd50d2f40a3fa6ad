"""Reads about moderation. Reads for people check who is asking; the matcher's reads are internal."""

from __future__ import annotations

from django.db.models import Count, Max

from community.errors import NotFound, PermissionDenied
from moderation.matcher import RuleSpec
from moderation.models import FlagRule


def can_manage_flag_rules(user) -> bool:
    """Flag rules apply to every group, so only site moderators (staff) see and change them."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def ensure_can_manage_flag_rules(user) -> None:
    if not can_manage_flag_rules(user):
        raise PermissionDenied(
            "Only site moderators can see and change the automatic flag rules.",
            code="flag_rules_forbidden",
        )


def list_flag_rules(*, actor):
    ensure_can_manage_flag_rules(actor)
    return FlagRule.objects.order_by("kind", "name")


def enabled_rule_specs() -> list[RuleSpec]:
    """What the matcher compiles: the enabled rules' ids, kinds, actions and patterns."""
    return [
        RuleSpec(id=row["id"], kind=row["kind"], action=row["action"], patterns=row["patterns"])
        for row in FlagRule.objects.filter(enabled=True)
        .order_by("id")
        .values("id", "kind", "action", "patterns")
    ]


def flag_rules_fingerprint() -> str:
    """Changes whenever a rule is added, edited or deleted (the matcher's fallback version)."""
    row = FlagRule.objects.aggregate(count=Count("id"), latest=Max("updated_at"), top=Max("id"))
    latest = row["latest"].isoformat() if row["latest"] else "-"
    return f"{row['count']}:{row['top']}:{latest}"


# --- Who may moderate what --------------------------------------------------------------------
#
# Site moderators (staff) see and act on every item; a facilitator sees and acts only on items of
# the groups they facilitate; members see nothing of the queue. Admin views use these.


def _is_active_user(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def moderated_group_ids(user):
    """The ids of the groups ``user`` moderates as a facilitator (a queryset of ids)."""
    from groups.selectors.membership import facilitated_groups

    return facilitated_groups(user).values("pk")


def can_moderate_group(user, group_id: int | None) -> bool:
    if not _is_active_user(user):
        return False
    if user.is_staff:
        return True
    if group_id is None:
        return False
    from groups.models import Membership, MembershipStatus, Role

    return Membership.objects.filter(
        group_id=group_id, user=user, role=Role.FACILITATOR, status=MembershipStatus.ACTIVE
    ).exists()


def is_moderator(user) -> bool:
    """Staff, or an active facilitator of at least one group: may open the queue at all."""
    if not _is_active_user(user):
        return False
    return user.is_staff or moderated_group_ids(user).exists()


def can_moderate_item(user, item) -> bool:
    return can_moderate_group(user, item.group_id)


def ensure_can_moderate_item(user, item) -> None:
    if not can_moderate_item(user, item):
        raise PermissionDenied(
            "Only site moderators and this group's facilitators can work on this item.",
            code="not_moderator",
        )


def scope_items(user, queryset=None):
    """The queue items ``user`` may see: all for staff, their groups' for facilitators."""
    from moderation.models import QueueItem

    queryset = QueueItem.objects.all() if queryset is None else queryset
    if not _is_active_user(user):
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(group_id__in=moderated_group_ids(user))


def queue(
    *,
    actor,
    group=None,
    kind: str | None = None,
    status: str | None = None,
    assignee=None,
    open_only: bool = False,
):
    """The queue ``actor`` may see, crisis first, then by priority, then oldest first.

    Filters: ``group`` (a Group or id), ``kind``, ``status``, ``assignee`` (a user or id);
    ``open_only`` leaves out closed items.
    """
    items = scope_items(actor).select_related("group", "assignee", "member")
    if group is not None:
        items = items.filter(group_id=getattr(group, "pk", group))
    if kind:
        items = items.filter(kind=kind)
    if status:
        items = items.filter(status=status)
    elif open_only:
        items = items.exclude(status="closed")
    if assignee is not None:
        items = items.filter(assignee_id=getattr(assignee, "pk", assignee))
    return items.order_by("-priority", "created_at", "pk")


def get_item(item_id: int, *, actor):
    """One queue item ``actor`` may see, or NotFound (the same answer whether it exists or not)."""
    item = scope_items(actor).filter(pk=item_id).select_related("group", "message").first()
    if item is None:
        raise NotFound("We couldn't find that queue item.", code="item_not_found")
    return item


CONTEXT_MESSAGES = 3


def item_context(item, *, actor, before: int = CONTEXT_MESSAGES, after: int = CONTEXT_MESSAGES):
    """The item's message with a few messages before and after it, for ``actor`` to judge.

    Reading an item's content is recorded in the audit log (a "viewed" row, no content).
    Returns a dict: ``messages`` (oldest first, each with ``seq``, ``author``, ``body``,
    ``hidden``, ``held``, ``deleted``, ``is_subject``), ``report`` and ``appeal`` details when
    the item has them, and the member's recent moderation ``history``.
    """
    from groups.models import Message
    from moderation.services.audit import record_audit

    ensure_can_moderate_item(actor, item)
    messages = []
    if item.message_id is not None:
        seq = item.message.seq
        rows = (
            Message.objects.filter(
                group_id=item.group_id, seq__gte=seq - before, seq__lte=seq + after
            )
            .select_related("author")
            .order_by("seq")
        )
        messages = [
            {
                "seq": m.seq,
                "author": m.author.display_name if m.author else "",
                "body": m.body,
                "content_warning": m.content_warning,
                "hidden": m.hidden_at is not None,
                "held": m.held_at is not None,
                "deleted": m.deleted_at is not None,
                "is_subject": m.pk == item.message_id,
            }
            for m in rows
        ]
    report = None
    if item.report_id is not None:
        r = item.report
        report = {"category": r.category, "details": r.details, "created": r.created_at}
    appeal = None
    if item.appeal_id is not None:
        a = item.appeal
        appeal = {"kind": a.kind, "text": a.text, "created": a.created_at}
    member_id = item.member_id or (item.message.author_id if item.message_id else None)
    record_audit(
        actor=actor,
        action="viewed",
        target_type="queue_item",
        target_id=item.pk,
        group_id=item.group_id,
    )
    return {
        "messages": messages,
        "report": report,
        "appeal": appeal,
        "history": member_history(member_id, actor=actor) if member_id else [],
        "actions": available_actions(item),
    }


def member_history(member_id: int, *, actor, limit: int = 10) -> list[dict]:
    """A member's recent moderation actions, in the groups ``actor`` may moderate."""
    from moderation.models import ModerationAction

    actions = ModerationAction.objects.filter(member_id=member_id)
    if not actor.is_staff:
        actions = actions.filter(group_id__in=moderated_group_ids(actor))
    return [
        {"kind": a.kind, "reason": a.reason, "created": a.created_at, "ends": a.ends_at}
        for a in actions.order_by("-created_at")[:limit]
    ]


# What a moderator may do with each kind of item. Crisis items never offer a hide, a warning,
# a mute, a removal or a ban: expressing distress is never a violation.
ACTIONS_BY_KIND = {
    "crisis": ("resolve",),
    "held": ("approve", "reject", "warn", "mute", "remove", "ban"),
    "flag": ("resolve", "hide", "warn", "mute", "remove", "ban"),
    "report": ("dismiss", "hide", "warn", "mute", "remove", "ban"),
    "appeal": ("resolve", "restore", "reinstate"),
}


def available_actions(item) -> tuple[str, ...]:
    if item.status == "closed":
        return ()
    return ACTIONS_BY_KIND.get(item.kind, ())


def my_reports(user) -> list[dict]:
    """The reports ``user`` made and how each ended (never who acted or what exactly was done)."""
    from moderation.models import Report

    if not _is_active_user(user):
        return []
    return [
        {
            "id": r.pk,
            "category": r.category,
            "created": r.created_at,
            "outcome": r.outcome,
            "outcome_label": r.get_outcome_display(),
        }
        for r in Report.objects.filter(reporter=user).order_by("-created_at")
    ]


def audit_log(*, actor):
    """Audit rows ``actor`` may read: all for staff, their groups' for facilitators."""
    from moderation.models import AuditEntry

    if not _is_active_user(actor):
        return AuditEntry.objects.none()
    if actor.is_staff:
        return AuditEntry.objects.all()
    return AuditEntry.objects.filter(group_id__in=moderated_group_ids(actor))


def reportable_message(slug: str, seq: int, *, user):
    """The message ``seq`` of group ``slug``, for a member of that group to report, or
    NotFound (the same answer whether it exists or the member can't see it).
    ``moderation.services.report_message`` checks what the member may see in detail."""
    from groups.models import Message
    from groups.selectors.membership import access_group_as_member

    try:
        group, _membership = access_group_as_member(slug, user)
    except PermissionDenied:
        raise NotFound("We couldn't find that message.", code="message_not_found") from None
    message = Message.objects.filter(group=group, seq=seq).select_related("group").first()
    if message is None:
        raise NotFound("We couldn't find that message.", code="message_not_found")
    return message


def actions_about(user):
    """Moderation actions about ``user`` that they may see and answer, newest first.

    They see what was done, when, in which group and why; never who did it.
    """
    from moderation.models import ActionKind, ModerationAction

    if not _is_active_user(user):
        return ModerationAction.objects.none()
    return (
        ModerationAction.objects.filter(
            member=user,
            kind__in=[
                ActionKind.WARN,
                ActionKind.MUTE,
                ActionKind.REMOVE,
                ActionKind.HIDE,
                ActionKind.REJECT,
            ],
        )
        .select_related("group")
        .order_by("-created_at")[:50]
    )
