"""Reads for check-ins ("how present do you feel right now?"): whether to offer one today, a
member's own history and its chart, and what members shared with a group's facilitators.

Who sees what: a member sees all of their own check-ins; a group's active facilitators (and
site moderators) see the check-ins shared with "my facilitators only" in that group, for 30
days, from people who are still members; nobody else sees a private one, ever. Group
check-ins are room messages and are read like them (``groups.selectors.chat``).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from community.errors import PermissionDenied
from groups.models import (
    CheckIn,
    CheckInAudience,
    Feeling,
    Group,
    Membership,
    MembershipStatus,
    Presence,
    RoomPreference,
)
from groups.selectors.membership import can_manage_group

__all__ = [
    "CHART_MAX_ENTRIES",
    "HISTORY_MAX_ENTRIES",
    "SHARED_WINDOW",
    "CheckInEntry",
    "check_in_chart_svg",
    "check_in_entries",
    "check_ins_for_facilitators",
    "local_date",
    "my_check_ins",
    "should_offer_check_in",
]

SHARED_WINDOW = timedelta(days=30)
HISTORY_MAX_ENTRIES = 200
CHART_MAX_ENTRIES = 30


def _zone(user) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return zoneinfo.ZoneInfo("UTC")


def local_date(user, *, now: datetime | None = None) -> date:
    """Today on the member's own calendar (``user.time_zone``): a day is their day."""
    return (now or timezone.now()).astimezone(_zone(user)).date()


def should_offer_check_in(user, *, now: datetime | None = None) -> bool:
    """Offer the check-in on entering a room only if the member hasn't answered it (checked in
    or said "not today") earlier on their local today."""
    if not user.is_authenticated:
        return False
    # In SQL: this runs for every room page, and the ORM took longer to build the query than
    # the database to answer it.
    field = RoomPreference._meta.get_field("check_in_offered_on")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {connection.ops.quote_name(RoomPreference._meta.db_table)} "  # noqa: S608 -- a table name; values are parameters
            f"WHERE user_id = %s AND {connection.ops.quote_name(field.column)} = %s",
            [user.pk, field.get_db_prep_value(local_date(user, now=now), connection)],
        )
        answered_today = cursor.fetchone() is not None
    return not answered_today


def my_check_ins(user, *, limit: int = HISTORY_MAX_ENTRIES) -> list[CheckIn]:
    """The member's own check-ins, newest first (at most ``limit``), groups loaded."""
    if not user.is_authenticated:
        return []
    return list(
        CheckIn.objects.filter(user=user)
        .select_related("group")
        .order_by("-created_at", "-id")[:limit]
    )


def check_ins_for_facilitators(group: Group, *, user, now: datetime | None = None) -> list:
    """Check-ins members shared with this group's facilitators in the last 30 days, newest
    first, authors loaded. Only from people who are still active members: someone who left
    takes their sharing with them.

    Raises PermissionDenied unless ``user`` is an active facilitator of ``group`` or staff.
    """
    if not can_manage_group(user, group):
        raise PermissionDenied(
            _("Only this group's facilitators can see the check-ins shared with them."),
            code="not_facilitator",
        )
    since = (now or timezone.now()) - SHARED_WINDOW
    still_member = Membership.objects.filter(
        group=group, user=OuterRef("user"), status=MembershipStatus.ACTIVE
    )
    return list(
        CheckIn.objects.filter(
            group=group, audience=CheckInAudience.FACILITATORS, created_at__gte=since
        )
        .filter(Exists(still_member))
        .select_related("user")
        .order_by("-created_at", "-id")
    )


# --- Presenting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInEntry:
    """One check-in as a page shows it: labels translated, time on the reader's clock."""

    pk: int
    when: datetime
    presence: int
    presence_label: str
    feelings: list[str]
    note: str
    audience: str
    audience_label: str
    group_name: str


def _feeling_labels(values) -> list[str]:
    return [str(Feeling(v).label) for v in values if v in Feeling.values]


def _audience_label(check_in: CheckIn) -> str:
    if check_in.audience == CheckInAudience.GROUP and check_in.group is not None:
        return _("Shared with %(group)s") % {"group": check_in.group.name}
    if check_in.audience == CheckInAudience.FACILITATORS and check_in.group is not None:
        return _("Shared with the facilitators of %(group)s") % {"group": check_in.group.name}
    return _("Just me")


def check_in_entries(check_ins, *, zone) -> list[CheckInEntry]:
    """``check_ins`` (groups loaded) ready for a template, times in ``zone``."""
    return [
        CheckInEntry(
            pk=c.pk,
            when=c.created_at.astimezone(zone),
            presence=c.presence,
            presence_label=str(Presence(c.presence).label),
            feelings=_feeling_labels(c.feelings),
            note=c.note,
            audience=c.audience,
            audience_label=_audience_label(c),
            group_name=c.group.name if c.group is not None else "",
        )
        for c in check_ins
    ]


def _point_title(entry: CheckInEntry) -> str:
    parts = [
        formats.date_format(entry.when, "DATETIME_FORMAT"),
        entry.presence_label,
    ]
    if entry.feelings:
        parts.append(", ".join(entry.feelings))
    if entry.note:
        parts.append(entry.note)
    return "; ".join(parts)


def check_in_chart_svg(
    entries: list[CheckInEntry],
    *,
    chart_id: str = "checkin-chart",
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """A small line chart of presence over time, as inline SVG markup (no script, no styles).

    ``entries`` oldest first (the caller picks how many; ``CHART_MAX_ENTRIES`` is a good
    number). Accessible as one image (``role="img"`` with a ``<title>`` and a ``<desc>``
    summarising it); each point also carries its own ``<title>`` (a tooltip). The page lists
    every entry in a table too, which is what screen readers should read. Every piece of text
    goes through ``format_html``, so a note can never become markup. Empty: an empty string.
    """
    if not entries:
        return SafeString("")
    left, right, top, bottom = 110, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    levels = Presence.values  # 1..5

    def y(level: int) -> float:
        return round(top + plot_h * (max(levels) - level) / (max(levels) - min(levels)), 1)

    def x(index: int) -> float:
        if len(entries) == 1:
            return round(left + plot_w / 2, 1)
        return round(left + plot_w * index / (len(entries) - 1), 1)

    grid = format_html_join(
        "",
        '<line class="checkin-chart-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor"'
        ' stroke-opacity="0.2"/><text x="{}" y="{}" text-anchor="end" font-size="12"'
        ' fill="currentColor">{}</text>',
        (
            (left, width - right, y(value), y(value), left - 8, y(value) + 4, label)
            for value, label in Presence.choices
        ),
    )
    points = " ".join(f"{x(i)},{y(e.presence)}" for i, e in enumerate(entries))
    line = (
        format_html(
            '<polyline class="checkin-chart-line" points="{}" fill="none" stroke="currentColor"'
            ' stroke-width="2"/>',
            points,
        )
        if len(entries) > 1
        else ""
    )
    dots = format_html_join(
        "",
        '<circle class="checkin-chart-point" cx="{}" cy="{}" r="5" fill="currentColor">'
        "<title>{}</title></circle>",
        ((x(i), y(e.presence), _point_title(e)) for i, e in enumerate(entries)),
    )
    first, last = entries[0].when, entries[-1].when
    axis = format_html(
        '<text x="{}" y="{}" font-size="12" fill="currentColor">{}</text>'
        '<text x="{}" y="{}" font-size="12" text-anchor="end" fill="currentColor">{}</text>',
        left,
        height - 10,
        formats.date_format(first, "SHORT_DATE_FORMAT"),
        width - right,
        height - 10,
        formats.date_format(last, "SHORT_DATE_FORMAT"),
    )
    lowest = min(entries, key=lambda e: e.presence).presence_label
    highest = max(entries, key=lambda e: e.presence).presence_label
    description = ngettext(
        "Your %(count)s check-in, on %(first)s: %(low)s.",
        "Your last %(count)s check-ins, from %(first)s to %(last)s. They range from "
        "“%(low)s” to “%(high)s”; the most recent was “%(latest)s”.",
        len(entries),
    ) % {
        "count": len(entries),
        "first": formats.date_format(first, "DATE_FORMAT"),
        "last": formats.date_format(last, "DATE_FORMAT"),
        "low": lowest,
        "high": highest,
        "latest": entries[-1].presence_label,
    }
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" id="{id}" class="checkin-chart" role="img"'
        ' viewBox="0 0 {w} {h}" width="{w}" height="{h}" aria-labelledby="{id}-title {id}-desc">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
        "{grid}{line}{dots}{axis}</svg>",
        id=chart_id,
        w=width,
        h=height,
        title=_("How present you felt, over time"),
        desc=description,
        grid=grid,
        line=line,
        dots=dots,
        axis=axis,
    )
