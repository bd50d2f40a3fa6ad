"""Meeting pages: the schedule, RSVPs, facilitators' planning, .ics files and private feeds."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from community.errors import DomainError, NotFound, PermissionDenied
from community.views import refusal
from groups import selectors, services
from groups.forms.meetings import MEETING_FIELD_FOR, MeetingForm, MoveOccurrenceForm, RsvpForm
from groups.models import Group, Location, Occurrence, OccurrenceStatus, RsvpAnswer

__all__ = ["urlpatterns"]


def _group_or_404(slug: str) -> Group:
    try:
        return selectors.get_group(slug)
    except NotFound as e:
        raise Http404(e.message) from e


def _refusal(request, error: DomainError):
    return refusal(request, error)


def _show_on_form(form, error: DomainError) -> None:
    field = error.details.get("field")
    field = MEETING_FIELD_FOR.get(field, field)
    form.add_error(field if field in form.fields else None, error.message)


def _back(request, slug: str):
    """Back where the form was posted from (same site only), else the group's meetings."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("groups:meetings", slug=slug)


# --- Members --------------------------------------------------------------------------------


@login_required
@require_GET
def meeting_list(request, slug):
    """The group's coming meetings with RSVPs; managers also see and plan the series."""
    group = _group_or_404(slug)
    try:
        occurrences = selectors.upcoming_occurrences(group, user=request.user, limit=12)
    except DomainError as e:
        return _refusal(request, e)
    can_manage = selectors.can_manage_group(request.user, group)
    return render(
        request,
        "groups/meetings/list.html",
        {
            "group": group,
            "occurrences": occurrences,
            "can_manage": can_manage,
            "meetings": selectors.group_meetings(group, user=request.user) if can_manage else [],
        },
    )


@login_required
@require_POST
def rsvp(request, slug, pk):
    group = _group_or_404(slug)
    form = RsvpForm(request.POST)
    try:
        occurrence = selectors.access_occurrence(group, pk, user=request.user)
        if not form.is_valid():
            raise DomainError(_("Please choose going, maybe or not going."), code="bad_answer")
        services.rsvp(occurrence, user=request.user, answer=form.cleaned_data["answer"])
    except DomainError as e:
        return _refusal(request, e)
    messages.success(request, _RSVP_MESSAGES[form.cleaned_data["answer"]])
    return _back(request, slug)


_RSVP_MESSAGES = {
    RsvpAnswer.GOING: gettext_lazy("Thanks, you're down as going."),
    RsvpAnswer.MAYBE: gettext_lazy("Thanks, you're down as maybe. No pressure either way."),
    RsvpAnswer.NOT_GOING: gettext_lazy(
        "Thanks for letting the group know. You're welcome next time."
    ),
}


# --- Facilitators ---------------------------------------------------------------------------


def _manage(request, slug) -> Group:
    try:
        return selectors.access_group_to_manage(slug, request.user)
    except NotFound as e:
        raise Http404(e.message) from e


@login_required
@require_http_methods(["GET", "POST"])
def meeting_create(request, slug):
    try:
        group = _manage(request, slug)
    except PermissionDenied as e:
        return _refusal(request, e)
    form = MeetingForm(request.POST or None, initial={"time_zone": request.user.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            meeting = services.schedule_meeting(group, actor=request.user, **form.service_kwargs())
        except PermissionDenied as e:
            return _refusal(request, e)
        except DomainError as e:
            _show_on_form(form, e)
        else:
            messages.success(
                request, _("“%(title)s” is on the calendar.") % {"title": meeting.title}
            )
            return redirect("groups:meeting_detail", slug=slug, pk=meeting.pk)
    return render(
        request, "groups/meetings/form.html", {"group": group, "form": form, "meeting": None}
    )


@login_required
@require_http_methods(["GET", "POST"])
def meeting_edit(request, slug, pk):
    group = _group_or_404(slug)
    try:
        meeting = selectors.access_meeting_to_manage(group, pk, user=request.user)
    except DomainError as e:
        return _refusal(request, e)
    form = MeetingForm(request.POST or None, initial=MeetingForm.initial_for(meeting))
    if request.method == "POST" and form.is_valid():
        try:
            services.update_meeting(meeting, actor=request.user, **form.service_kwargs())
        except PermissionDenied as e:
            return _refusal(request, e)
        except DomainError as e:
            _show_on_form(form, e)
        else:
            messages.success(request, _("Saved. Members' answers for unchanged dates are kept."))
            return redirect("groups:meeting_detail", slug=slug, pk=meeting.pk)
    return render(
        request, "groups/meetings/form.html", {"group": group, "form": form, "meeting": meeting}
    )


@login_required
@require_GET
def meeting_detail(request, slug, pk):
    """A series as its facilitators see it: each coming sitting, its answers, who's coming."""
    group = _group_or_404(slug)
    try:
        meeting = selectors.access_meeting_to_manage(group, pk, user=request.user)
        occurrences = selectors.meeting_occurrences(meeting, user=request.user)
    except DomainError as e:
        return _refusal(request, e)
    return render(
        request,
        "groups/meetings/detail.html",
        {"group": group, "meeting": meeting, "occurrences": occurrences},
    )


@login_required
@require_http_methods(["GET", "POST"])
def meeting_cancel(request, slug, pk):
    group = _group_or_404(slug)
    try:
        meeting = selectors.access_meeting_to_manage(group, pk, user=request.user)
        if request.method == "POST":
            services.cancel_meeting(meeting, actor=request.user)
            messages.success(
                request, _("The series is cancelled. Members will hear about each date.")
            )
            return redirect("groups:meetings", slug=slug)
    except DomainError as e:
        return _refusal(request, e)
    return render(request, "groups/meetings/cancel.html", {"group": group, "meeting": meeting})


@login_required
@require_http_methods(["GET", "POST"])
def occurrence_cancel(request, slug, pk):
    group = _group_or_404(slug)
    try:
        occurrence = selectors.access_occurrence_to_manage(group, pk, user=request.user)
        if request.method == "POST":
            services.cancel_occurrence(occurrence, actor=request.user)
            messages.success(request, _("That date is cancelled. Members will hear about it."))
            return redirect("groups:meeting_detail", slug=slug, pk=occurrence.meeting_id)
    except DomainError as e:
        return _refusal(request, e)
    return render(
        request,
        "groups/meetings/cancel.html",
        {"group": group, "meeting": occurrence.meeting, "occurrence": occurrence},
    )


@login_required
@require_http_methods(["GET", "POST"])
def occurrence_move(request, slug, pk):
    group = _group_or_404(slug)
    try:
        occurrence = selectors.access_occurrence_to_manage(group, pk, user=request.user)
    except DomainError as e:
        return _refusal(request, e)
    zone_name = occurrence.meeting.time_zone
    local = occurrence.starts_at.astimezone(zoneinfo.ZoneInfo(zone_name))
    form = MoveOccurrenceForm(
        request.POST or None,
        time_zone=zone_name,
        initial={"date": local.date(), "start_time": local.time().replace(second=0, microsecond=0)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.move_occurrence(
                occurrence, actor=request.user, starts_at=form.cleaned_data["starts_at"]
            )
        except PermissionDenied as e:
            return _refusal(request, e)
        except DomainError as e:
            _show_on_form(form, e)
        else:
            messages.success(request, _("Moved. Members will hear about the new time."))
            return redirect("groups:meeting_detail", slug=slug, pk=occurrence.meeting_id)
    return render(
        request,
        "groups/meetings/move.html",
        {"group": group, "occurrence": occurrence, "form": form, "time_zone": zone_name},
    )


# --- Calendars ------------------------------------------------------------------------------


def _place(request, occurrence: Occurrence) -> str:
    """Where the sitting happens, as an absolute address: the video link or the group's room."""
    meeting = occurrence.meeting
    if meeting.location == Location.VIDEO:
        return meeting.video_url
    slug = meeting.group.slug
    try:
        room = reverse("groups:room", kwargs={"slug": slug})
    except NoReverseMatch:
        # The room page belongs to the chat; until it exists, the group's page leads there.
        room = f"/groups/{slug}/"
    return request.build_absolute_uri(room)


def _calendar(request, occurrences, *, name: str) -> bytes:
    """One VEVENT per sitting, times in the meeting's own zone (with its VTIMEZONE).

    Only the meeting's title, group name, times and place are included: calendar files end up
    in third-party calendar services, so the facilitator's note and anyone's answers stay here.
    """
    cal = icalendar.Calendar()
    cal.add("prodid", f"-//{settings.SITE_NAME}//Meetings//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    now = datetime.now(UTC)
    # UIDs must stay the same whichever address the file was fetched from.
    host = urlsplit(settings.SITE_URL).hostname or request.get_host().split(":")[0]
    for occurrence in occurrences:
        meeting = occurrence.meeting
        zone = zoneinfo.ZoneInfo(meeting.time_zone)
        cancelled = (
            occurrence.status == OccurrenceStatus.CANCELLED or meeting.cancelled_at is not None
        )
        event = icalendar.Event()
        event.add("uid", f"occurrence-{occurrence.pk}@{host}")
        event.add("dtstamp", now)
        event.add("dtstart", occurrence.starts_at.astimezone(zone))
        event.add("dtend", occurrence.ends_at.astimezone(zone))
        event.add("summary", f"{meeting.title} · {meeting.group.name}")
        place = _place(request, occurrence)
        event.add("location", place)
        event.add("url", place)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        # Calendar apps apply a changed event only when its sequence number goes up.
        changed = occurrence.changed_at or meeting.cancelled_at
        event.add("sequence", 1 if changed else 0)
        event.add("last-modified", changed or meeting.created_at)
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


def _ics_response(body: bytes, *, filename: str, attachment: bool) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Robots-Tag"] = "noindex"
    patch_cache_control(response, private=True, no_cache=True)
    return response


@login_required
@require_GET
def meeting_ics(request, slug, pk):
    """One meeting's sittings as an .ics file, for the group's members."""
    group = _group_or_404(slug)
    try:
        meeting = selectors.access_meeting(group, pk, user=request.user)
    except PermissionDenied as e:
        return _refusal(request, e)
    except NotFound as e:
        raise Http404(e.message) from e
    occurrences = meeting.occurrences.select_related("meeting__group").order_by("starts_at")
    body = _calendar(request, occurrences, name=f"{meeting.title} · {group.name}")
    return _ics_response(body, filename=f"meeting-{meeting.pk}.ics", attachment=True)


@require_GET
def calendar_feed(request, token):
    """A member's private feed, by its secret address (no sign-in: calendar apps fetch it)."""
    try:
        feed = selectors.calendar_feed_for_token(token)
    except NotFound as e:
        raise Http404(e.message) from e
    body = _calendar(
        request,
        selectors.feed_occurrences(feed),
        name=_("%(site)s meetings") % {"site": settings.SITE_NAME},
    )
    return _ics_response(body, filename="meetings.ics", attachment=False)


@login_required
@require_GET
def my_calendar(request):
    feed = services.calendar_feed_for(request.user)
    feed_url = request.build_absolute_uri(
        reverse("groups:calendar_feed", kwargs={"token": feed.token})
    )
    return render(request, "groups/meetings/my_calendar.html", {"feed_url": feed_url})


@login_required
@require_POST
def my_calendar_revoke(request):
    services.revoke_calendar_feed(request.user)
    messages.success(
        request,
        _("Your old calendar address no longer works. Here is a new one, if you'd like it."),
    )
    return redirect("groups:my_calendar")


urlpatterns = [
    path("groups/<slug:slug>/meetings/", meeting_list, name="meetings"),
    path("groups/<slug:slug>/meetings/new/", meeting_create, name="meeting_create"),
    path("groups/<slug:slug>/meetings/<int:pk>/", meeting_detail, name="meeting_detail"),
    path("groups/<slug:slug>/meetings/<int:pk>/edit/", meeting_edit, name="meeting_edit"),
    path("groups/<slug:slug>/meetings/<int:pk>/cancel/", meeting_cancel, name="meeting_cancel"),
    path("groups/<slug:slug>/meetings/<int:pk>.ics", meeting_ics, name="meeting_ics"),
    path("groups/<slug:slug>/meetings/dates/<int:pk>/rsvp/", rsvp, name="rsvp"),
    path(
        "groups/<slug:slug>/meetings/dates/<int:pk>/cancel/",
        occurrence_cancel,
        name="occurrence_cancel",
    ),
    path(
        "groups/<slug:slug>/meetings/dates/<int:pk>/move/", occurrence_move, name="occurrence_move"
    ),
    path("me/calendar/", my_calendar, name="my_calendar"),
    path("me/calendar/revoke/", my_calendar_revoke, name="my_calendar_revoke"),
    path("calendar/<str:token>.ics", calendar_feed, name="calendar_feed"),
]
