"""Reads for the practice space, each for its owner only.

Nobody else reads a practice space: not other members, not facilitators, not moderators in the
admin (``groups``' admin leaves practice rooms out, moderation's reports refuse them and its
screening skips them). Moderators see a practice message only through the crisis path, when the
member said yes to telling them (``companion.services.replies``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from community.errors import NotFound
from companion.engine import choices_for, resume_state
from companion.flows import load_flows
from companion.models import PracticeSpace
from groups.models import Message, MessageKind

__all__ = [
    "HISTORY_FOR_MODEL",
    "daily_cap",
    "model_history",
    "people_lines",
    "practice_export",
    "practice_space_for",
    "practice_state",
    "share_targets",
]

# How many recent messages of the conversation a generative model is given.
HISTORY_FOR_MODEL = 12


def daily_cap() -> int:
    return int(getattr(settings, "COMPANION_DAILY_CAP", 200))


def practice_space_for(user) -> PracticeSpace | None:
    """The member's own practice space, or None (never opened, or cleared)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return PracticeSpace.objects.select_related("room", "draft_posted_to").filter(user=user).first()


def access_practice_space(user) -> PracticeSpace:
    space = practice_space_for(user)
    if space is None:
        raise NotFound(
            _("Your practice space isn't open yet. You can open it from the practice page."),
            code="no_practice_space",
        )
    return space


def share_targets(user) -> list:
    """The circles the member may post a rehearsed share to now (active, not muted, current
    agreement, open)."""
    from groups.selectors import my_memberships
    from groups.services import posting_refusal

    now = timezone.now()
    return [m.group for m in my_memberships(user) if posting_refusal(m, now=now) is None]


def practice_state(user) -> dict:
    """What the practice page shows beside the conversation, for its owner: the replies offered
    as buttons, the rehearsed share (if any), whether a crisis question is open, and the groups
    the share may go to."""
    space = practice_space_for(user)
    if space is None:
        return {"open": False, "choices": [], "draft": None, "crisis": False, "support": None}
    state = resume_state(
        space.flow, space.step, space.slots, awaiting_consent=space.crisis_seq is not None
    )
    draft = None
    if space.draft:
        draft = {
            "text": space.draft,
            "posted": space.draft_posted_at is not None,
            "posted_to": space.draft_posted_to.name if space.draft_posted_to else "",
            "posted_to_slug": space.draft_posted_to.slug if space.draft_posted_to else "",
        }
    support = None
    if space.crisis_seq is not None:
        from community.selectors import crisis_resources

        support = {"message": load_flows().say["support_panel"][0], "resources": crisis_resources()}
    return {
        "open": True,
        "choices": choices_for(state),
        "draft": draft,
        "crisis": space.crisis_seq is not None,
        "support": support,
    }


def _zone(user) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone)
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def people_lines(user, *, now=None) -> list[str]:
    """Where the member can find people, on their own clock: the next meeting of each of their
    circles, and their safe persons' usual times. Empty when there is neither."""
    from groups.selectors import my_memberships, my_safe_persons, next_occurrences

    now = now or timezone.now()
    zone = _zone(user)
    groups = [m.group for m in my_memberships(user)]
    lines = []
    upcoming = next_occurrences(groups)
    for group in groups:
        sitting = upcoming.get(group.pk)
        if sitting is None:
            continue
        when = formats.date_format(sitting.starts_at.astimezone(zone), "l j F, H:i")
        lines.append(
            _("%(group)s meets next on %(when)s (your time).") % {"group": group.name, "when": when}
        )
    for person in my_safe_persons(user, now=now):
        if person.live and person.availability:
            times = "; ".join(w["label"] for w in person.availability)
            lines.append(
                _("%(name)s is usually around: %(times)s (your time).")
                % {"name": person.name, "times": times}
            )
    return lines


def model_history(space: PracticeSpace, *, up_to_seq: int) -> list[dict]:
    """The recent conversation as a generative model may see it: the member's own messages and
    the companion's replies that name nobody else, oldest first, up to ``up_to_seq``.

    Nothing else: no other member's words or names (a reply about meetings or safe persons is
    left out), no content notes, no deleted or hidden words, and nothing of a crisis (the
    member's words that read as one, and the companion's crisis replies): that conversation is
    the built-in companion's and the moderators', never a model's.
    """
    from companion.safety import is_crisis

    rows = list(
        Message.objects.filter(
            group_id=space.room_id,
            seq__lte=up_to_seq,
            deleted_at__isnull=True,
            hidden_at__isnull=True,
        )
        .filter(kind__in=[MessageKind.TEXT, MessageKind.COMPANION])
        .exclude(kind=MessageKind.COMPANION, companion_reply__about_others=True)
        .exclude(kind=MessageKind.COMPANION, companion_reply__intent__startswith="crisis")
        .exclude(kind=MessageKind.TEXT, author_id__isnull=True)
        .order_by("-seq")
        .values_list("kind", "author_id", "body")[:HISTORY_FOR_MODEL]
    )
    history = []
    for kind, author_id, body in reversed(rows):
        if kind == MessageKind.TEXT and (author_id != space.user_id or is_crisis(body)):
            continue  # only ever the member's own words, and never a crisis
        history.append(
            {"role": "assistant" if kind == MessageKind.COMPANION else "user", "content": body}
        )
    return history


def practice_export(user) -> list[dict]:
    """The member's practice conversation (their words and the companion's replies) and their
    rehearsed share, for their own data export: one row each, oldest first."""
    space = practice_space_for(user)
    if space is None:
        return []
    rows = Message.objects.filter(group_id=space.room_id, deleted_at__isnull=True).order_by("seq")
    result = [
        {
            "number": m.seq,
            "kind": "companion" if m.kind == MessageKind.COMPANION else "yours",
            "text": m.body,
            "sent": m.created_at.isoformat(),
        }
        for m in rows
        if m.kind == MessageKind.COMPANION or m.author_id == user.pk
    ]
    if space.draft:
        result.append(
            {
                "number": None,
                "kind": "rehearsed share (posted)" if space.draft_posted_at else "rehearsed share",
                "text": space.draft,
                "sent": space.draft_saved_at.isoformat() if space.draft_saved_at else None,
            }
        )
    return result
