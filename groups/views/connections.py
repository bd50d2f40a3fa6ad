"""The safe-persons page (/me/safe-persons/) and the private room of two safe persons.

Thin: each POST validates a form, calls one service, and comes back to the page with a calm
note; a rule that says no is shown on the page (or on the refusal page) and changes nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_GET, require_POST

from community.errors import DomainError, NotFound
from community.views import refusal
from groups import selectors, services
from groups.forms.connections import (
    STATUS_SUGGESTIONS,
    AvailabilityForm,
    RemoveAvailabilityForm,
    SafePersonInviteForm,
    SafeStatusForm,
)
from groups.models import MAX_PENDING_INVITES
from groups.views.room import room_context


def _page(request, *, invite_form=None, availability_form=None, status_form=None, status=200):
    user = request.user
    names = [p["name"] for p in selectors.invitable_people(user)]
    own_status = selectors.my_safe_status(user)
    context = {
        "connections": selectors.my_safe_persons(user),
        "invitations": selectors.invitations_for_me(user),
        "sent": selectors.invitations_sent(user),
        "availability": selectors.my_availability(user),
        "own_status": own_status,
        "facilitator_statuses": selectors.statuses_for_facilitator(user),
        "invite_form": invite_form or SafePersonInviteForm(names=names),
        "invitable": names,
        "availability_form": availability_form or AvailabilityForm(),
        "status_form": status_form
        or SafeStatusForm(initial={"text": own_status.text} if own_status else None),
        "status_suggestions": STATUS_SUGGESTIONS,
        "max_pending": MAX_PENDING_INVITES,
    }
    return render(request, "groups/connections/safe_persons.html", context, status=status)


@login_required
@require_GET
def safe_persons(request):
    return _page(request)


@login_required
@require_POST
def invite(request):
    names = [p["name"] for p in selectors.invitable_people(request.user)]
    form = SafePersonInviteForm(request.POST, names=names)
    if not form.is_valid():
        return _page(request, invite_form=form, status=400)
    try:
        invitee = selectors.member_by_display_name(form.cleaned_data["person"])
        services.invite_safe_person(request.user, invitee=invitee, note=form.cleaned_data["note"])
    except DomainError as error:
        form.add_error(None, error.message)
        return _page(request, invite_form=form, status=409)
    messages.success(
        request,
        _("Your invitation is on its way to %(name)s. There's no rush for them to answer.")
        % {"name": invitee.display_name},
    )
    return redirect("groups:safe_persons")


def _invitation_step(service, done: str):
    """One button on an invitation (accept, decline, withdraw): call ``service``, say ``done``."""

    @login_required
    @require_POST
    def view(request, pk):
        try:
            service(pk, user=request.user)
        except DomainError as error:
            return refusal(request, error)
        messages.success(request, done)
        return redirect("groups:safe_persons")

    return view


accept_invitation = _invitation_step(
    services.accept_safe_person_invite,
    _lazy("You're safe persons now. Your private space is below, whenever you'd like it."),
)
decline_invitation = _invitation_step(
    services.decline_safe_person_invite,
    _lazy("Declined. They won't be told; to them it simply wasn't accepted."),
)
withdraw_invitation = _invitation_step(
    services.withdraw_safe_person_invite, _lazy("Your invitation is withdrawn.")
)


@login_required
@require_POST
def end_connection(request, pk):
    try:
        services.end_safe_connection(pk, actor=request.user)
    except DomainError as error:
        return refusal(request, error)
    messages.success(
        request,
        _("The connection has ended. The other person sees only that it ended, never why."),
    )
    return redirect("groups:safe_persons")


@login_required
@require_POST
def add_availability(request):
    form = AvailabilityForm(request.POST)
    if not form.is_valid():
        return _page(request, availability_form=form, status=400)
    windows = [*selectors.my_availability(request.user), form.cleaned_data]
    try:
        services.set_availability(request.user, windows=windows)
    except DomainError as error:
        form.add_error(None, error.message)
        return _page(request, availability_form=form, status=409)
    messages.success(request, _("Saved. Your safe persons see it on their own clock."))
    return redirect("groups:safe_persons")


@login_required
@require_POST
def remove_availability(request):
    form = RemoveAvailabilityForm(request.POST)
    windows = selectors.my_availability(request.user)
    if not form.is_valid() or form.cleaned_data["index"] >= len(windows):
        messages.info(request, _("That time was already gone."))
        return redirect("groups:safe_persons")
    del windows[form.cleaned_data["index"]]
    services.set_availability(request.user, windows=windows)
    messages.success(request, _("Removed."))
    return redirect("groups:safe_persons")


@login_required
@require_POST
def set_status(request):
    form = SafeStatusForm(request.POST)
    if not form.is_valid():
        return _page(request, status_form=form, status=400)
    try:
        services.set_safe_status(
            request.user, text=form.cleaned_data["text"], hours=form.cleaned_data["hours"]
        )
    except DomainError as error:
        form.add_error(None, error.message)
        return _page(request, status_form=form, status=409)
    messages.success(request, _("Your status is up. It will go by itself when its time is up."))
    return redirect("groups:safe_persons")


@login_required
@require_POST
def clear_status(request):
    services.clear_safe_status(request.user)
    messages.success(request, _("Your status is cleared."))
    return redirect("groups:safe_persons")


@login_required
@require_GET
def pair_room(request, slug):
    """The private room of two safe persons: the room page, with who the other is, their
    availability and status instead of a circle's check-ins and rounds. Read-only once ended."""
    try:
        pair = selectors.access_pair_room(slug, request.user)
    except NotFound as error:
        raise Http404(error.message) from error
    context = room_context(request, pair.membership)
    context["pair"] = pair
    return render(request, "groups/room.html", context)


urlpatterns = [
    path("me/safe-persons/", safe_persons, name="safe_persons"),
    path("me/safe-persons/invite/", invite, name="safe_person_invite"),
    path(
        "me/safe-persons/invitations/<int:pk>/accept/",
        accept_invitation,
        name="safe_person_accept",
    ),
    path(
        "me/safe-persons/invitations/<int:pk>/decline/",
        decline_invitation,
        name="safe_person_decline",
    ),
    path(
        "me/safe-persons/invitations/<int:pk>/withdraw/",
        withdraw_invitation,
        name="safe_person_withdraw",
    ),
    path("me/safe-persons/connections/<int:pk>/end/", end_connection, name="safe_person_end"),
    path("me/safe-persons/availability/", add_availability, name="safe_person_availability"),
    path(
        "me/safe-persons/availability/remove/",
        remove_availability,
        name="safe_person_availability_remove",
    ),
    path("me/safe-persons/status/", set_status, name="safe_person_status"),
    path("me/safe-persons/status/clear/", clear_status, name="safe_person_status_clear"),
    path("me/safe-persons/room/<slug:slug>/", pair_room, name="safe_person_room"),
]
