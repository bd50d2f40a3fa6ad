"""Check-ins over HTTP: recording one from the room's dialog (fetch, or a plain form post
without JavaScript), "not today", the member's own history with its chart, deleting one, and
the facilitators' list of check-ins shared with them. Thin: the services decide."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from community.errors import DomainError, NotFound, PermissionDenied
from community.views import refusal
from groups import selectors, services
from groups.forms.checkins import CheckInForm
from groups.models import (
    CHECK_IN_MAX_FEELINGS,
    CHECK_IN_NOTE_MAX_CHARS,
    CheckInAudience,
    Feeling,
    Membership,
    Presence,
)

_SAVED = {
    CheckInAudience.PRIVATE: _lazy("Saved. It's in your check-ins, just for you."),
    CheckInAudience.GROUP: _lazy("Thank you for checking in. It's in the room for the group."),
    CheckInAudience.FACILITATORS: _lazy("Thank you. Your facilitators can see your check-in."),
}


def room_context(request, membership: Membership) -> dict:
    """What the room page needs for its check-in dialog (``groups/checkins/dialog.html``).

    The dialog opens by itself only when the member hasn't answered the offer today; without
    JavaScript, ``?check-in=1`` renders it open.
    """
    offer = selectors.should_offer_check_in(request.user)
    slug = membership.group.slug
    return {
        "check_in": {
            "offer": offer,
            "open": offer or request.GET.get("check-in") == "1",
            "presences": Presence.choices,
            "feelings": Feeling.choices,
            "audiences": CheckInAudience.choices,
            "initial_audience": CheckInAudience.PRIVATE,
            "max_feelings": CHECK_IN_MAX_FEELINGS,
            "note_max": CHECK_IN_NOTE_MAX_CHARS,
            "client_id": uuid.uuid4(),
            "record_url": reverse("groups:record_check_in", kwargs={"slug": slug}),
            "skip_url": reverse("groups:skip_check_in", kwargs={"slug": slug}),
            "history_url": reverse("groups:my_check_ins"),
        }
    }


def _group_or_404(slug):
    try:
        return selectors.get_group(slug)
    except NotFound as error:
        raise Http404(error.message) from error


def _answer(request, slug, *, ok: bool, message: str, status: int = 200):
    """JSON for the dialog's fetch; without JavaScript, a flash message back in the room."""
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"ok": ok, "message": message}, status=status)
    (messages.success if ok else messages.error)(request, message)
    return redirect(reverse("groups:room", kwargs={"slug": slug}))


def _status(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, PermissionDenied):
        return 403
    return 400


@login_required
@require_POST
def record_check_in(request, slug):
    group = _group_or_404(slug)
    form = CheckInForm(request.POST)
    if not form.is_valid():
        return _answer(request, slug, ok=False, message=form.first_error(), status=400)
    data = form.cleaned_data
    try:
        services.record_check_in(
            request.user,
            group=group,
            presence=data["presence"],
            feelings=data["feelings"],
            note=data["note"],
            audience=data["audience"],
            client_id=data["client_id"],
        )
    except DomainError as error:
        return _answer(request, slug, ok=False, message=error.message, status=_status(error))
    return _answer(request, slug, ok=True, message=str(_SAVED[data["audience"]]))


@login_required
@require_POST
def skip_check_in(request, slug):
    _group_or_404(slug)
    services.skip_check_in_offer(request.user)
    return _answer(request, slug, ok=True, message=_("That's fine. We won't ask again today."))


@login_required
@require_GET
def my_check_ins(request):
    """The member's own check-ins: a chart of the recent ones, and every one in a table."""
    zone = request.user.zone
    entries = selectors.check_in_entries(selectors.my_check_ins(request.user), zone=zone)
    recent = list(reversed(entries[: selectors.CHART_MAX_ENTRIES]))  # oldest first
    return render(
        request,
        "groups/checkins/history.html",
        {"entries": entries, "chart": selectors.check_in_chart_svg(recent)},
    )


@login_required
@require_POST
def delete_check_in(request, pk: int):
    try:
        services.delete_check_in(pk, user=request.user)
    except NotFound as error:
        raise Http404(error.message) from error
    messages.success(request, _("Deleted. That check-in is gone."))
    return redirect("groups:my_check_ins")


@login_required
@require_GET
def shared_check_ins(request, slug):
    """For a group's facilitators: check-ins members shared with them, the last 30 days."""
    group = _group_or_404(slug)
    try:
        rows = selectors.check_ins_for_facilitators(group, user=request.user)
    except PermissionDenied as error:
        return refusal(request, error, group=group)
    entries = selectors.check_in_entries(rows, zone=request.user.zone)
    named = [(row.user.display_name, entry) for row, entry in zip(rows, entries, strict=True)]
    return render(
        request,
        "groups/checkins/shared.html",
        {"group": group, "entries": named, "days": selectors.SHARED_WINDOW.days},
    )


urlpatterns = [
    path("me/check-ins/", my_check_ins, name="my_check_ins"),
    path("me/check-ins/<int:pk>/delete/", delete_check_in, name="delete_check_in"),
    path("groups/<slug:slug>/check-ins/", record_check_in, name="record_check_in"),
    path("groups/<slug:slug>/check-ins/skip/", skip_check_in, name="skip_check_in"),
    path("groups/<slug:slug>/check-ins/shared/", shared_check_ins, name="shared_check_ins"),
]
