"""The practice space's pages (/me/practice/): thin adapters over companion's services and
selectors. The conversation itself runs over the room socket like any room's."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from community.errors import DomainError
from community.views import refusal
from companion import selectors, services
from companion.backends import backend_status
from companion.forms import ClearForm, ShareForm
from groups import selectors as group_selectors
from groups.views.room import room_context


@login_required
@require_GET
def practice(request):
    """The practice space: an introduction until the member opens it, then their room."""
    space = selectors.practice_space_for(request.user)
    status = backend_status()
    if space is None:
        return render(request, "companion/intro.html", {"backend": status})
    try:
        membership = group_selectors.access_room(space.room.slug, request.user)
    except DomainError as error:
        return refusal(request, error)
    context = room_context(request, membership)
    state = selectors.practice_state(request.user)
    targets = selectors.share_targets(request.user)
    context["practice"] = {
        **state,
        "targets": targets,
        "backend": status,
        "share_form": ShareForm(initial={"group": targets[0].slug} if targets else None),
        "clear_form": ClearForm(),
    }
    return render(request, "groups/room.html", context)


@login_required
@require_POST
def open_space(request):
    services.open_practice_space(request.user, actor=request.user)
    return redirect("companion:practice")


@login_required
@require_GET
def state(request):
    """What the page shows beside the conversation, as JSON (static/js/room-practice.js)."""
    return JsonResponse(selectors.practice_state(request.user))


@login_required
@require_POST
def share(request):
    """Post the rehearsed share to one of the member's circles, now that they chose to."""
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("Please choose a group to post your share to. Nothing was posted.")
        )
        return redirect("companion:practice")
    try:
        message = services.post_rehearsed_share(
            request.user,
            actor=request.user,
            group_slug=form.cleaned_data["group"],
            content_warning=form.cleaned_data["content_warning"],
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("companion:practice")
    messages.success(
        request,
        _("Your share is in %(group)s's room now. Thank you for trusting them with it.")
        % {"group": message.group.name},
    )
    room = reverse("groups:room", kwargs={"slug": message.group.slug})
    return redirect(f"{room}#msg-{message.seq}")


@login_required
@require_POST
def clear(request):
    """Delete the practice history, after the member ticked that they mean it."""
    if not ClearForm(request.POST).is_valid():
        messages.info(request, _("Nothing was cleared. Tick the box if you'd like to clear it."))
        return redirect("companion:practice")
    try:
        services.clear_practice_space(request.user, actor=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("companion:practice")
    messages.success(
        request, _("Your practice space is cleared. It starts fresh whenever you come back.")
    )
    return redirect("companion:practice")
