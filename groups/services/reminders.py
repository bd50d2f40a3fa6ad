"""Meeting reminders: one database row per (sitting, member, lead time), sent exactly once.

Rows, not Celery countdowns (a Redis broker redelivers a task whose ETA outlives the visibility
timeout). Three parts:

- **When** (``reminder_due_at``, pure): the sitting's start minus the lead time, moved out of the
  member's quiet hours: to just before they begin when the meeting is during them or soon after
  them, otherwise to their end; never after the meeting starts.
- **Which** (``sync_*``): the rows a change calls for. Every active member of the group gets a
  reminder per chosen lead time for every scheduled future sitting, except "not going". A row
  no longer wanted is ``dropped`` (never deleted, so its id, the notification's dedupe key,
  stays put); a wanted dropped row is re-armed; a pending row whose time changed is moved.
  A reminder whose time has already passed when it is (re)computed is not armed: reminders
  are never back-dated. Rows already sent stay sent.
- **Sending** (``send_due_reminders``, every 30 s from beat): stale claims go back to pending,
  rows of sittings that already began are dropped, due rows are claimed in batches
  (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; one conditional update per row on
  SQLite) and each batch is sent in one transaction that re-reads its rows under row locks,
  checks in a few queries that each is still wanted, makes the notifications with
  ``notify_many`` (dedupe key ``reminder:<id>``) and marks the rows sent. The notifications and
  the "sent" marks commit together (when a nearer reminder of the same sitting is due as well,
  only that one goes); a crash or an error before commit leaves the batch's rows claimed for
  the sweep, and the dedupe key makes even a replay of a committed send harmless. Their emails
  go in tasks of a hundred, each over one mail connection (``community.tasks``).

Which-rule and when-rule each live here once; the groups services call ``sync_*`` where the
facts change (schedules, sittings, RSVPs, memberships) and ``groups.notifications`` does for
members' preference and time-zone changes.
"""

from __future__ import annotations

import logging
import time as monotonic_time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from community.models import (
    REMINDER_LEAD_MINUTES,
    NotificationKind,
    NotificationPreference,
    User,
)
from community.services.bulk_notifications import NotificationDraft, notify_many
from community.services.preferences import (
    _first_instant_at_or_after,  # the DST-aware wall-clock arithmetic quiet hours already use
    in_quiet_hours,
    quiet_hours_end,
)
from groups.models import (
    Group,
    Meeting,
    Membership,
    MembershipStatus,
    Occurrence,
    OccurrenceStatus,
    Reminder,
    ReminderStatus,
    Rsvp,
    RsvpAnswer,
)

__all__ = [
    "CLAIM_TIMEOUT",
    "QUIET_MARGIN",
    "claim_due_reminders",
    "drop_started_reminders",
    "quiet_window",
    "reminder_copy",
    "reminder_due_at",
    "requeue_stale_claims",
    "send_claimed_reminder",
    "send_claimed_reminders",
    "send_due_reminders",
    "sync_group_reminders",
    "sync_meeting_reminders",
    "sync_member_reminders",
    "sync_occurrence_reminders",
]

logger = logging.getLogger(__name__)

# "Just before quiet hours begin": early enough that the every-30-seconds task (at most a
# minute late) and the email task after it finish before the quiet hours start.
QUIET_MARGIN = timedelta(minutes=10)
# A claim older than this belongs to a worker that died (or was killed at its hard time limit,
# CELERY_TASK_TIME_LIMIT = 90 s): its rows go back to pending. Longer than any live run holds one.
CLAIM_TIMEOUT = timedelta(minutes=2)
# One run of the beat task stops claiming after this long, well inside the soft time limit
# (60 s); the next run (30 s later) or a concurrent one carries on.
RUN_BUDGET_SECONDS = 40.0
# Rows claimed and sent in one transaction: a few queries per batch whatever its size, while
# its row locks are held for well under a second (bench/reminders.py: about 1,000 a second).
CLAIM_BATCH = 100


# --- When: pure arithmetic ---------------------------------------------------------------------


def quiet_window(prefs: NotificationPreference, when: datetime) -> tuple[datetime, datetime] | None:
    """The (begin, end) instants of the member's quiet hours around ``when``; None outside them.

    Wall-clock times in the member's zone, so a night across a daylight-saving change is an
    hour shorter or longer; a start inside the spring-forward gap begins when the clocks jump.
    """
    if not in_quiet_hours(prefs, when):
        return None
    end = quiet_hours_end(prefs, when)
    local = when.astimezone(prefs.zone)
    day = local.date()
    if prefs.quiet_start > prefs.quiet_end and local.time() < prefs.quiet_start:
        day -= timedelta(days=1)  # after midnight: these quiet hours began yesterday evening
    begin = _first_instant_at_or_after(datetime.combine(day, prefs.quiet_start), prefs.zone)
    return begin, end


def reminder_due_at(
    *, starts_at: datetime, lead_minutes: int, prefs: NotificationPreference
) -> datetime:
    """When a reminder ``lead_minutes`` before ``starts_at`` goes out, for a member with
    ``prefs`` (quiet hours, and the time zone of ``prefs.user``). Pure.

    Outside quiet hours: exactly ``lead_minutes`` ahead. Inside them:

    - the meeting is during those quiet hours or *soon after* them (sending at their end would
      leave less than half the lead time): ``QUIET_MARGIN`` before the quiet hours begin;
    - otherwise: when the quiet hours end (always before the meeting starts).
    """
    if timezone.is_naive(starts_at):
        raise ValueError("starts_at must be timezone-aware")
    lead = timedelta(minutes=lead_minutes)
    nominal = starts_at - lead
    window = quiet_window(prefs, nominal)
    if window is None:
        return nominal
    begin, end = window
    if starts_at < end + lead / 2:
        return begin - QUIET_MARGIN
    return min(end, starts_at)


# --- Which: the one rule, and syncing rows to it -------------------------------------------------


def _wanted_leads(
    occurrence: Occurrence,
    *,
    is_member: bool,
    answer: str | None,
    prefs: NotificationPreference,
    now: datetime,
) -> set[int]:
    """The lead times (minutes) a member wants reminders at for ``occurrence``. The one rule."""
    meeting = occurrence.meeting
    if (
        not is_member
        or answer == RsvpAnswer.NOT_GOING
        or occurrence.status != OccurrenceStatus.SCHEDULED
        or meeting.cancelled_at is not None
        or meeting.group.archived_at is not None
        or occurrence.starts_at <= now
    ):
        return set()
    return {
        lead
        for lead in (prefs.reminder_lead_minutes or [])
        if isinstance(lead, int) and lead in REMINDER_LEAD_MINUTES
    }


def _preferences(users: Iterable[User]) -> dict[int, NotificationPreference]:
    users = {u.pk: u for u in users}
    stored = {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=list(users))}
    result = {}
    for pk, user in users.items():
        pref = stored.get(pk) or NotificationPreference(user=user)
        pref.user = user  # so ``pref.zone`` reads the member's time zone without a query
        result[pk] = pref
    return result


def _sync(occurrences, *, user_ids: set[int] | None = None, now: datetime | None = None) -> int:
    """Bring the reminder rows of ``occurrences`` (limited to ``user_ids`` when given) in line
    with the rule. Returns how many rows were created or changed. Safe to run any number of
    times and concurrently: inserts ignore conflicts, changes are conditional on not sent."""
    now = now or timezone.now()
    occurrences = list(
        occurrences.filter(starts_at__gt=now).select_related("meeting__group").order_by("pk")
    )
    if not occurrences:
        return 0
    occurrence_ids = [o.pk for o in occurrences]
    group_ids = {o.meeting.group_id for o in occurrences}

    members = Membership.objects.filter(
        group_id__in=group_ids, status=MembershipStatus.ACTIVE, user__is_active=True
    )
    existing_rows = Reminder.objects.filter(occurrence_id__in=occurrence_ids)
    answers = Rsvp.objects.filter(occurrence_id__in=occurrence_ids)
    if user_ids is not None:
        members = members.filter(user_id__in=user_ids)
        existing_rows = existing_rows.filter(user_id__in=user_ids)
        answers = answers.filter(user_id__in=user_ids)
    members_by_group: dict[int, set[int]] = defaultdict(set)
    for group_id, user_id in members.values_list("group_id", "user_id"):
        members_by_group[group_id].add(user_id)
    existing = {(r.occurrence_id, r.user_id, r.lead_minutes): r for r in existing_rows}
    answer_of = {(o, u): a for o, u, a in answers.values_list("occurrence_id", "user_id", "answer")}
    involved = set().union(*members_by_group.values()) | {key[1] for key in existing}
    prefs = _preferences(User.objects.filter(pk__in=involved))

    wanted: dict[tuple[int, int, int], datetime] = {}
    for occurrence in occurrences:
        for user_id in members_by_group.get(occurrence.meeting.group_id, ()):
            pref = prefs[user_id]
            for lead in _wanted_leads(
                occurrence,
                is_member=True,
                answer=answer_of.get((occurrence.pk, user_id)),
                prefs=pref,
                now=now,
            ):
                wanted[(occurrence.pk, user_id, lead)] = reminder_due_at(
                    starts_at=occurrence.starts_at, lead_minutes=lead, prefs=pref
                )

    changed = 0
    new_rows = [
        Reminder(occurrence_id=o, user_id=u, lead_minutes=lead, due_at=due)
        for (o, u, lead), due in wanted.items()
        if (o, u, lead) not in existing and due > now
    ]
    # ignore_conflicts: a concurrent sync that inserted the same row first wins quietly.
    Reminder.objects.bulk_create(new_rows, ignore_conflicts=True)
    changed += len(new_rows)

    not_sent = ~Q(status=ReminderStatus.SENT)
    for key, row in existing.items():
        if row.status == ReminderStatus.SENT:
            continue
        due = wanted.get(key)
        if due is None:
            if row.status != ReminderStatus.DROPPED:
                changed += (
                    Reminder.objects.filter(not_sent, pk=row.pk)
                    .exclude(status=ReminderStatus.DROPPED)
                    .update(status=ReminderStatus.DROPPED, claimed_at=None)
                )
        elif row.status in (ReminderStatus.PENDING, ReminderStatus.CLAIMED):
            if row.due_at == due:
                continue  # unchanged (an overdue row from an outage stays due: the outage rule)
            if due > now:
                changes = {"status": ReminderStatus.PENDING, "due_at": due, "claimed_at": None}
            else:
                changes = {"status": ReminderStatus.DROPPED, "claimed_at": None}
            changed += Reminder.objects.filter(not_sent, pk=row.pk).update(**changes)
        elif due > now:  # dropped, wanted again
            changed += Reminder.objects.filter(pk=row.pk, status=ReminderStatus.DROPPED).update(
                status=ReminderStatus.PENDING, due_at=due, claimed_at=None
            )
    return changed


def sync_occurrence_reminders(
    occurrence: Occurrence, *, user=None, now: datetime | None = None
) -> int:
    """After a sitting was moved or cancelled (or one member answered it): its rows."""
    return _sync(
        Occurrence.objects.filter(pk=occurrence.pk),
        user_ids=None if user is None else {user.pk},
        now=now,
    )


def sync_meeting_reminders(meeting: Meeting, *, now: datetime | None = None) -> int:
    """After a meeting was scheduled, changed, cancelled or extended: all its future rows."""
    return _sync(Occurrence.objects.filter(meeting_id=meeting.pk), now=now)


def sync_group_reminders(group: Group, *, now: datetime | None = None) -> int:
    """After a group was archived or brought back: every future row of its meetings."""
    return _sync(Occurrence.objects.filter(meeting__group_id=group.pk), now=now)


def sync_member_reminders(user, *, group: Group | None = None, now: datetime | None = None) -> int:
    """After a member joined or left ``group`` (or changed preferences or time zone, without
    ``group``): that member's rows for the group's (or all their groups') future sittings."""
    if group is not None:
        occurrences = Occurrence.objects.filter(meeting__group_id=group.pk)
    else:
        group_ids = Membership.objects.filter(user_id=user.pk).values("group_id")
        occurrences = Occurrence.objects.filter(meeting__group_id__in=group_ids)
    return _sync(occurrences, user_ids={user.pk}, now=now)


# --- Sending ---------------------------------------------------------------------------------


def requeue_stale_claims(*, now: datetime | None = None) -> int:
    """Rows claimed longer than ``CLAIM_TIMEOUT`` ago and never marked sent (their worker died
    mid-send) go back to pending. A send that did commit marked its row sent, so it is not
    touched; one racing this update holds the row lock and commits first."""
    now = now or timezone.now()
    count = Reminder.objects.filter(
        status=ReminderStatus.CLAIMED, claimed_at__lt=now - CLAIM_TIMEOUT
    ).update(status=ReminderStatus.PENDING, claimed_at=None)
    if count:
        logger.warning("reminders: re-queued %d stale claims", count)
    return count


def drop_started_reminders(*, now: datetime | None = None) -> int:
    """Reminders still waiting when their sitting has begun (a worker outage) are dropped:
    a reminder after the start would only be noise."""
    now = now or timezone.now()
    count = Reminder.objects.filter(
        status__in=[ReminderStatus.PENDING, ReminderStatus.CLAIMED],
        occurrence__starts_at__lte=now,
    ).update(status=ReminderStatus.DROPPED, claimed_at=None)
    if count:
        logger.info("reminders: dropped %d whose meeting had begun", count)
    return count


def claim_due_reminders(*, now: datetime | None = None, limit: int = CLAIM_BATCH) -> list[int]:
    """Claim up to ``limit`` due pending rows for this caller; returns their ids.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent runs take disjoint rows
    without waiting. SQLite (no row locks): each claim is a conditional update that must change
    exactly one row, so a row another run took first is skipped.
    """
    now = now or timezone.now()
    due = Reminder.objects.filter(status=ReminderStatus.PENDING, due_at__lte=now).order_by(
        "due_at", "pk"
    )
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
            if ids:
                Reminder.objects.filter(pk__in=ids).update(
                    status=ReminderStatus.CLAIMED, claimed_at=now
                )
        return ids
    claimed = []
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        if (
            Reminder.objects.filter(pk=pk, status=ReminderStatus.PENDING).update(
                status=ReminderStatus.CLAIMED, claimed_at=now
            )
            == 1
        ):
            claimed.append(pk)
    return claimed


def _when_phrase(starts_at: datetime, user: User, now: datetime) -> str:
    """ "tomorrow at 19:00", on the member's own wall clock."""
    zone = NotificationPreference(user=user).zone
    local_start, local_now = starts_at.astimezone(zone), now.astimezone(zone)
    clock = formats.time_format(local_start, "H:i")
    minutes = round((starts_at - now).total_seconds() / 60)
    if minutes <= 90:
        if 55 <= minutes <= 65:
            return _("in about an hour, at %(time)s") % {"time": clock}
        minutes = max(minutes, 1)
        return ngettext(
            "in %(n)d minute, at %(time)s", "in %(n)d minutes, at %(time)s", minutes
        ) % {"n": minutes, "time": clock}
    days = (local_start.date() - local_now.date()).days
    if days == 0:
        return _("today at %(time)s") % {"time": clock}
    if days == 1:
        return _("tomorrow at %(time)s") % {"time": clock}
    return _("on %(day)s at %(time)s") % {
        "day": formats.date_format(local_start, "l j F"),
        "time": clock,
    }


def reminder_copy(occurrence: Occurrence, user: User, *, now: datetime) -> tuple[str, str]:
    """The (title, body) of a reminder, in the member's time zone, computed at sending time so
    it is true even when the reminder was moved by quiet hours."""
    meeting, group = occurrence.meeting, occurrence.meeting.group
    when = _when_phrase(occurrence.starts_at, user, now)
    title = _("%(title)s: %(when)s") % {"title": meeting.title, "when": when}
    body = _("Your group “%(group)s” meets %(when)s your time.") % {
        "group": group.name,
        "when": when,
    }
    if meeting.facilitator_note:
        body += "\n\n" + meeting.facilitator_note
    return title, body


def _drop(pks: Iterable[int]) -> int:
    return Reminder.objects.filter(pk__in=list(pks), status=ReminderStatus.CLAIMED).update(
        status=ReminderStatus.DROPPED, claimed_at=None
    )


def _send_batch(pks: list[int], *, now: datetime) -> Counter:
    """The body of ``send_claimed_reminders``, inside its transaction."""
    # Locked in id order, so two runs that ever hold overlapping ids cannot deadlock.
    rows = list(
        Reminder.objects.select_for_update(of=("self",))
        .select_related("occurrence__meeting__group", "user")
        .filter(pk__in=pks, status=ReminderStatus.CLAIMED)
        .order_by("pk")
    )
    counts = Counter(skipped=len(set(pks)) - len(rows))
    live = [r for r in rows if r.occurrence.starts_at > now]
    began = [r.pk for r in rows if r.occurrence.starts_at <= now]
    occurrence_ids = {r.occurrence_id for r in live}
    user_ids = {r.user_id for r in live}
    active = set(
        Membership.objects.filter(
            group_id__in={r.occurrence.meeting.group_id for r in live},
            user_id__in=user_ids,
            status=MembershipStatus.ACTIVE,
        ).values_list("group_id", "user_id")
    )
    answers = {
        (o, u): a
        for o, u, a in Rsvp.objects.filter(
            occurrence_id__in=occurrence_ids, user_id__in=user_ids
        ).values_list("occurrence_id", "user_id", "answer")
    }
    prefs = _preferences(r.user for r in live)
    # The nearest lead time among each member's due, not dropped rows of each sitting.
    nearest: dict[tuple[int, int], int] = {}
    for o, u, lead in (
        Reminder.objects.filter(
            occurrence_id__in=occurrence_ids, user_id__in=user_ids, due_at__lte=now
        )
        .exclude(status=ReminderStatus.DROPPED)
        .values_list("occurrence_id", "user_id", "lead_minutes")
    ):
        nearest[(o, u)] = min(lead, nearest.get((o, u), lead))

    unwanted, sending, drafts = list(began), [], []
    links: dict[str, str] = {}
    for row in live:
        occurrence, user = row.occurrence, row.user
        group = occurrence.meeting.group
        wanted = _wanted_leads(
            occurrence,
            is_member=user.is_active and (group.pk, user.pk) in active,
            answer=answers.get((occurrence.pk, user.pk)),
            prefs=prefs[user.pk],
            now=now,
        )
        if (
            row.lead_minutes not in wanted
            or nearest.get((occurrence.pk, user.pk), row.lead_minutes) < row.lead_minutes
        ):
            # Not wanted any more, or a nearer reminder for the same sitting is also due (after
            # an outage, or both were moved before the same quiet hours): that one alone goes,
            # not a burst of two.
            unwanted.append(row.pk)
            continue
        if group.slug not in links:
            links[group.slug] = reverse("groups:meetings", kwargs={"slug": group.slug})
        title, body = reminder_copy(occurrence, user, now=now)
        drafts.append(
            NotificationDraft(
                user=user,
                title=title,
                body=body,
                url=links[group.slug],
                dedupe_key=f"reminder:{row.pk}",
            )
        )
        sending.append(row.pk)
    notify_many(drafts, kind=NotificationKind.MEETING_REMINDER)
    counts["sent"] = Reminder.objects.filter(pk__in=sending, status=ReminderStatus.CLAIMED).update(
        status=ReminderStatus.SENT, sent_at=now
    )
    counts["dropped"] = _drop(unwanted)
    return counts


def send_claimed_reminders(pks: Iterable[int], *, now: datetime | None = None) -> Counter:
    """Send a batch of claimed reminders; returns how many were "sent", "dropped" and "skipped"
    (not claimed any more: another run's, or already done).

    One transaction for the batch: it locks the rows that are still claimed, checks in a few
    queries that each is still wanted (membership, answer, preferences, the sitting not begun,
    no nearer reminder due), makes the notifications (``notify_many``, deduplicated by
    ``reminder:<id>``) and marks the rows sent, all committed together. If it fails or the
    process dies before the commit, nothing of the batch was written and its rows wait,
    claimed, for ``requeue_stale_claims``; other batches are not affected.
    """
    pks = list(pks)
    if not pks:
        return Counter()
    with transaction.atomic():
        return _send_batch(pks, now=now or timezone.now())


def send_claimed_reminder(pk: int, *, now: datetime | None = None) -> str:
    """Send one claimed reminder; returns "sent", "dropped" or "skipped" (not ours any more)."""
    counts = send_claimed_reminders([pk], now=now)
    return next(outcome for outcome in ("sent", "dropped", "skipped") if counts[outcome])


def send_due_reminders(
    *,
    now: datetime | None = None,
    budget_seconds: float = RUN_BUDGET_SECONDS,
    batch: int = CLAIM_BATCH,
) -> dict[str, int]:
    """One run of the beat task: sweep stale claims, drop rows of begun sittings, then claim and
    send due rows in batches of ``batch`` until none are due or the time budget is spent.

    ``now`` fixes the clock (tests); by default each batch reads the time afresh. Any number
    of runs may overlap: claims are disjoint and every send is conditional on its claim. A
    batch that fails raises out of the run: its rows stay claimed for the sweep, the batches
    before it are sent, and rows not yet claimed wait for the next run.
    """
    fixed = now
    counts = {"requeued": 0, "dropped": 0, "sent": 0, "skipped": 0}
    counts["requeued"] = requeue_stale_claims(now=fixed)
    counts["dropped"] = drop_started_reminders(now=fixed)
    deadline = monotonic_time.monotonic() + budget_seconds
    while monotonic_time.monotonic() < deadline:
        claimed = claim_due_reminders(now=fixed, limit=batch)
        if not claimed:
            break
        for outcome, n in send_claimed_reminders(claimed, now=fixed).items():
            counts[outcome] += n
    if counts["sent"] or counts["dropped"] or counts["requeued"]:
        logger.info(
            "reminders: sent=%(sent)d dropped=%(dropped)d requeued=%(requeued)d "
            "skipped=%(skipped)d",
            counts,
        )
    return counts
