"""What a member's export holds: one function per area, listed in ``EXPORT_SECTIONS``.

A new model that holds something about a member gets one function and one entry there, and
both the JSON file and the readable page pick it up.

What an export leaves out, on purpose: reports other people made about the member (the
reporter is never revealed), other members' words (a reported message's text, someone else's
messages), anything another member chose to keep from them (an invitation they sent that was
quietly declined reads "not accepted yet", as on the safe-persons page; blocks and mutes others
made), and secrets (password hash, two-step secrets, the calendar feed's token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from community.models import Block, Mute, Notification, NotificationPreference, User

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_SECTIONS",
    "ExportSection",
    "export_content",
]

EXPORT_FORMAT = "common-ground-member-data/1"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


# --- One function per area --------------------------------------------------------------------


def _profile(user: User) -> list[dict]:
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator

    emails = ", ".join(
        EmailAddress.objects.filter(user=user)
        .order_by("-primary", "email")
        .values_list("email", flat=True)
    )
    two_step = ", ".join(
        sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    )
    return [
        {
            "display_name": user.display_name,
            "email": user.email,
            "email_addresses": emails,
            "time_zone": user.time_zone,
            "joined": _iso(user.date_joined),
            "last_sign_in": _iso(user.last_login),
            "two_step_sign_in": two_step,
        }
    ]


def _memberships(user: User) -> list[dict]:
    from groups.models import Membership

    rows = Membership.objects.filter(user=user).select_related("group").order_by("joined_at")
    return [
        {
            "group": m.group.name,
            "role": m.role,
            "status": m.status,
            "joined": _iso(m.joined_at),
            "left": _iso(m.left_at),
            "agreement_version_accepted": m.agreement_version,
            "agreement_accepted": _iso(m.agreement_accepted_at),
            "listening": m.listening,
            "hide_presence": m.hide_presence,
            "posting_paused_until": _iso(m.muted_until),
        }
        for m in rows
    ]


def _messages(user: User) -> list[dict]:
    from groups.models import Message

    rows = (
        Message.objects.filter(author=user)
        .select_related("group")
        .order_by("created_at", "id")
        .iterator(chunk_size=2000)
    )
    return [
        {
            "group": m.group.name,
            "number": m.seq,
            "kind": m.kind,
            "text": m.body,
            "content_note": m.content_warning,
            "sent": _iso(m.created_at),
            "edited": _iso(m.edited_at),
            "deleted": _iso(m.deleted_at),
            "hidden_by_a_moderator": m.hidden_at is not None,
            "waiting_for_a_moderator": m.held_at is not None,
        }
        for m in rows
    ]


def _reactions(user: User) -> list[dict]:
    from groups.models import MessageReaction

    rows = (
        MessageReaction.objects.filter(user=user)
        .select_related("message__group")
        .order_by("created_at", "id")
    )
    return [
        {
            "group": r.message.group.name,
            "message_number": r.message.seq,
            "reaction": r.reaction,
            "given": _iso(r.created_at),
        }
        for r in rows
    ]


def _check_ins(user: User) -> list[dict]:
    from groups.models import CheckIn

    rows = CheckIn.objects.filter(user=user).select_related("group").order_by("created_at")
    return [
        {
            "when": _iso(c.created_at),
            "presence": c.presence,
            "feelings": ", ".join(c.feelings or []),
            "note": c.note,
            "shared_with": c.audience,
            "group": c.group.name if c.group_id else "",
        }
        for c in rows
    ]


def _round_turns(user: User) -> list[dict]:
    from groups.models import RoundTurn

    rows = RoundTurn.objects.filter(user=user).select_related("round__group").order_by("id")
    return [
        {
            "group": t.round.group.name,
            "round_started": _iso(t.round.created_at),
            "your_turn": t.status,
            "finished": _iso(t.finished_at),
        }
        for t in rows
    ]


def _room_preferences(user: User) -> list[dict]:
    from groups.models import RoomPreference

    pref = RoomPreference.objects.filter(user=user).first()
    if pref is None:
        return []
    return [
        {
            "topics_softened": ", ".join(pref.soften_topics or []),
            "check_in_last_offered_on": pref.check_in_offered_on.isoformat()
            if pref.check_in_offered_on
            else None,
        }
    ]


def _notification_preferences(user: User) -> list[dict]:
    pref = NotificationPreference.objects.filter(user=user).first()
    if pref is None:
        return []
    return [
        {
            "channels": pref.channels or {},
            "reminder_minutes_before": ", ".join(str(m) for m in pref.reminder_lead_minutes or []),
            "quiet_hours_start": pref.quiet_start.isoformat() if pref.quiet_start else None,
            "quiet_hours_end": pref.quiet_end.isoformat() if pref.quiet_end else None,
        }
    ]


def _notifications(user: User) -> list[dict]:
    rows = Notification.objects.filter(user=user).order_by("created_at", "id")
    return [
        {
            "kind": n.kind,
            "title": n.title,
            "text": n.body,
            "link": n.url,
            "created": _iso(n.created_at),
            "read": _iso(n.read_at),
            "emailed": _iso(n.emailed_at),
        }
        for n in rows
    ]


def _rsvps(user: User) -> list[dict]:
    from groups.models import Rsvp

    rows = (
        Rsvp.objects.filter(user=user)
        .select_related("occurrence__meeting__group")
        .order_by("occurrence__starts_at")
    )
    return [
        {
            "group": r.occurrence.meeting.group.name,
            "meeting": r.occurrence.meeting.title,
            "starts": _iso(r.occurrence.starts_at),
            "answer": r.answer,
            "answered": _iso(r.updated_at),
        }
        for r in rows
    ]


def _calendar_feed(user: User) -> list[dict]:
    from groups.models import CalendarFeed

    feed = CalendarFeed.objects.filter(user=user).first()
    # The token is a secret: its existence and age are the member's data, the token isn't news.
    return [{"created": _iso(feed.created_at)}] if feed else []


def _join_requests(user: User) -> list[dict]:
    from groups.models import JoinRequest

    rows = JoinRequest.objects.filter(user=user).select_related("group").order_by("created_at")
    return [
        {
            "group": r.group.name,
            "your_words": r.message,
            "status": r.status,
            "asked": _iso(r.created_at),
            "answered": _iso(r.decided_at),
            "answer_note": r.note,
        }
        for r in rows
    ]


def _waitlist(user: User) -> list[dict]:
    from groups.models import WaitlistEntry

    rows = WaitlistEntry.objects.filter(user=user).select_related("group").order_by("created_at")
    return [
        {
            "group": w.group.name,
            "status": w.status,
            "joined_the_list": _iso(w.created_at),
            "seat_offered": _iso(w.offered_at),
        }
        for w in rows
    ]


def _reports_made(user: User) -> list[dict]:
    from moderation.models import Report

    rows = Report.objects.filter(reporter=user).select_related("group").order_by("created_at")
    return [
        {
            "group": r.group.name,
            "about": "message" if r.message_id else "member",
            "category": r.category,
            "your_words": r.details,
            "made": _iso(r.created_at),
            "outcome": r.outcome,
            "settled": _iso(r.resolved_at),
        }
        for r in rows
    ]


def _moderation_about_me(user: User) -> list[dict]:
    """What moderators did about the member, as /moderation/mine/ shows it (never who)."""
    from moderation.models import ModerationAction

    rows = (
        ModerationAction.objects.filter(member=user).select_related("group").order_by("created_at")
    )
    return [
        {
            "group": a.group.name if a.group_id else "",
            "action": a.kind,
            "reason_given": a.reason,
            "when": _iso(a.created_at),
            "ends": _iso(a.ends_at),
        }
        for a in rows
    ]


def _appeals(user: User) -> list[dict]:
    from moderation.models import Appeal

    rows = Appeal.objects.filter(member=user).select_related("action").order_by("created_at")
    return [
        {
            "kind": a.kind,
            "about_action": a.action.kind,
            "your_words": a.text,
            "written": _iso(a.created_at),
        }
        for a in rows
    ]


def _safe_persons(user: User) -> list[dict]:
    from groups.models import SafeConnection

    rows = (
        SafeConnection.objects.filter(Q(user_low=user) | Q(user_high=user))
        .select_related("user_low", "user_high")
        .order_by("created_at")
    )
    return [
        {
            "with": (c.user_high if c.user_low_id == user.pk else c.user_low).display_name,
            "since": _iso(c.created_at),
            "ended": _iso(c.ended_at),
        }
        for c in rows
    ]


def _safe_person_invitations(user: User) -> list[dict]:
    from groups.models import InviteStatus, SafePersonInvite

    now = timezone.now()
    rows = (
        SafePersonInvite.objects.filter(Q(inviter=user) | Q(invitee=user))
        .select_related("inviter", "invitee")
        .order_by("created_at")
    )
    out = []
    for i in rows:
        sent = i.inviter_id == user.pk
        status = i.status
        if sent and status == InviteStatus.DECLINED:
            # As the safe-persons page shows it: a quiet "no" is never revealed.
            status = InviteStatus.EXPIRED if i.expires_at <= now else InviteStatus.PENDING
        out.append(
            {
                "direction": "sent" if sent else "received",
                "other_person": (i.invitee if sent else i.inviter).display_name,
                "note": i.note,
                "status": status,
                "sent": _iso(i.created_at),
                "expires": _iso(i.expires_at),
            }
        )
    return out


def _availability(user: User) -> list[dict]:
    from groups.models import AvailabilityWindow

    rows = AvailabilityWindow.objects.filter(user=user).order_by("start")
    return [
        {
            "days": ", ".join(str(d) for d in w.days or []),
            "from": w.start.isoformat(),
            "until": w.end.isoformat(),
        }
        for w in rows
    ]


def _safe_status(user: User) -> list[dict]:
    from groups.models import SafeStatus

    status = SafeStatus.objects.filter(user=user).first()
    if status is None:
        return []
    return [{"text": status.text, "set": _iso(status.set_at), "ends": _iso(status.expires_at)}]


def _mutes_and_blocks(user: User) -> list[dict]:
    """Only the ones the member made: someone who blocked them never shows."""
    mutes = Mute.objects.filter(user=user).select_related("muted")
    blocks = Block.objects.filter(user=user).select_related("blocked")
    rows = [("mute", m.muted.display_name, m.created_at) for m in mutes]
    rows += [("block", b.blocked.display_name, b.created_at) for b in blocks]
    return [
        {"kind": kind, "person": name, "since": _iso(when)}
        for kind, name, when in sorted(rows, key=lambda r: r[2])
    ]


def _sessions(user: User) -> list[dict]:
    from allauth.usersessions.models import UserSession

    from community.data_selectors.sessions import describe_user_agent
    from community.services.retention import PURGED_IP

    rows = UserSession.objects.filter(user=user).order_by("created_at")
    return [
        {
            "device": describe_user_agent(s.user_agent),
            "ip_address": None if s.ip == PURGED_IP else s.ip,  # purged after the period
            "signed_in": _iso(s.created_at),
            "last_active": _iso(s.last_seen_at),
        }
        for s in rows
    ]


def _practice_space(user: User) -> list[dict]:
    from companion.selectors import practice_export

    return practice_export(user)


@dataclass(frozen=True)
class ExportSection:
    key: str
    title: str
    build: Callable[[User], list[dict]]


EXPORT_SECTIONS: tuple[ExportSection, ...] = (
    ExportSection("profile", gettext_lazy("Your profile"), _profile),
    ExportSection("memberships", gettext_lazy("Your groups"), _memberships),
    ExportSection("messages", gettext_lazy("Your messages"), _messages),
    ExportSection("reactions", gettext_lazy("Reactions you gave"), _reactions),
    ExportSection("check_ins", gettext_lazy("Your check-ins"), _check_ins),
    ExportSection("round_turns", gettext_lazy("Your turns in go-around rounds"), _round_turns),
    ExportSection("room_preferences", gettext_lazy("Your room preferences"), _room_preferences),
    ExportSection(
        "notification_preferences",
        gettext_lazy("Your notification choices"),
        _notification_preferences,
    ),
    ExportSection("notifications", gettext_lazy("Your notifications"), _notifications),
    ExportSection("rsvps", gettext_lazy("Your answers to meetings"), _rsvps),
    ExportSection("calendar_feed", gettext_lazy("Your calendar feed"), _calendar_feed),
    ExportSection("join_requests", gettext_lazy("Your requests to join"), _join_requests),
    ExportSection("waitlist", gettext_lazy("Your places on waitlists"), _waitlist),
    ExportSection("reports_made", gettext_lazy("Reports you made"), _reports_made),
    ExportSection("moderation", gettext_lazy("Moderation about you"), _moderation_about_me),
    ExportSection("appeals", gettext_lazy("Your appeals and repair notes"), _appeals),
    ExportSection("safe_persons", gettext_lazy("Your safe persons"), _safe_persons),
    ExportSection(
        "safe_person_invitations", gettext_lazy("Safe-person invitations"), _safe_person_invitations
    ),
    ExportSection("availability", gettext_lazy("When you're usually around"), _availability),
    ExportSection("safe_status", gettext_lazy("Your status for safe persons"), _safe_status),
    ExportSection(
        "mutes_and_blocks", gettext_lazy("People you muted or blocked"), _mutes_and_blocks
    ),
    ExportSection("sessions", gettext_lazy("Your signed-in sessions"), _sessions),
    ExportSection("practice_space", gettext_lazy("Your practice space"), _practice_space),
)


def export_content(user: User, *, now: datetime | None = None) -> dict:
    """Everything the platform holds about ``user``, as one JSON-ready dict.

    Precondition: the caller decided ``user`` may have it (the member themself, through
    ``community.services.data.build_data_export``).
    """
    return {
        "format": EXPORT_FORMAT,
        "generated": _iso(now or timezone.now()),
        "sections": {section.key: section.build(user) for section in EXPORT_SECTIONS},
    }
