"""Muting and blocking: the people page (/me/people/) and the mute/block menu on a message.

Thin: each POST validates a form, calls one service, and goes back where it came from (the
people page, or the room at that message) with a calm note. Plain forms, so all of it works
without JavaScript. Nothing here is ever shown to the person muted or blocked.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from community.errors import DomainError, NotFound
from community.views import refusal
from groups import selectors, services
from groups.forms.people import ChoosePersonForm, RoomPersonForm, UndoPersonForm

SERVICES = {
    "mute": services.mute_member,
    "block": services.block_member,
    "unmute": services.unmute_member,
    "unblock": services.unblock_member,
}


def _done(action: str, name: str, *, changed: bool) -> str:
    """What to say after ``action`` on ``name``; doing it twice is fine and says so."""
    said = {
        ("mute", True): _(
            "You muted %(name)s. Their messages now arrive folded for you, and you can open "
            "any of them. They won't be told."
        ),
        ("mute", False): _("You'd already muted %(name)s, so nothing needed to change."),
        ("block", True): _(
            "You blocked %(name)s. Their messages arrive folded for you, they no longer see "
            "when you're here, and neither of you can invite the other or talk one-to-one. "
            "They won't be told."
        ),
        ("block", False): _("You'd already blocked %(name)s, so nothing needed to change."),
        ("unmute", True): _("You unmuted %(name)s. Their messages show as usual again."),
        ("unmute", False): _("%(name)s wasn't muted, so nothing needed to change."),
        ("unblock", True): _(
            "You unblocked %(name)s. They can see when you're here again. A safe-person "
            "connection that ended stays ended."
        ),
        ("unblock", False): _("%(name)s wasn't blocked, so nothing needed to change."),
    }
    return said[(action, changed)] % {"name": name}


def _page(request, *, choose_form=None, status=200):
    names = [p["name"] for p in selectors.people_i_may_mute(request.user)]
    context = {
        **selectors.my_mutes_and_blocks(request.user),
        "choose_form": choose_form or ChoosePersonForm(names=names),
        "choosable": names,
    }
    return render(request, "groups/people/people.html", context, status=status)


@login_required
@require_GET
def people(request):
    return _page(request)


@login_required
@require_POST
def choose_person(request):
    """Mute or block someone chosen from the people page's list."""
    names = [p["name"] for p in selectors.people_i_may_mute(request.user)]
    form = ChoosePersonForm(request.POST, names=names)
    if not form.is_valid():
        return _page(request, choose_form=form, status=400)
    action = form.cleaned_data["action"]
    try:
        other = selectors.person_by_name(form.cleaned_data["person"])
        changed = SERVICES[action](request.user, other=other)
    except DomainError as error:
        form.add_error(None, error.message)
        return _page(request, choose_form=form, status=409)
    messages.success(request, _done(action, other.display_name, changed=changed))
    return redirect("groups:people")


@login_required
@require_POST
def undo_person(request):
    """Unmute or unblock someone on the member's own lists."""
    form = UndoPersonForm(request.POST)
    if not form.is_valid():
        messages.info(request, _("We couldn't tell what to undo. Nothing was changed."))
        return redirect("groups:people")
    action = form.cleaned_data["action"]
    try:
        other = selectors.person_by_name(form.cleaned_data["person"])
        changed = SERVICES[action](request.user, other=other)
    except DomainError as error:
        messages.info(request, error.message)
        return redirect("groups:people")
    messages.success(request, _done(action, other.display_name, changed=changed))
    return redirect("groups:people")


@login_required
@require_POST
def room_person(request, slug, seq):
    """Mute or block the author of message ``seq`` from its menu in the room, then back to
    the room at that message. A refusal is said there too, and changes nothing."""
    try:
        membership = selectors.access_room(slug, request.user)
    except NotFound as error:
        raise Http404(error.message) from error
    except DomainError as error:
        return refusal(request, error)
    back = reverse("groups:room", kwargs={"slug": slug}) + f"#msg-{seq}"
    form = RoomPersonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose whether to mute or to block. Nothing changed."))
        return redirect(back)
    action = form.cleaned_data["action"]
    try:
        other = selectors.message_author(membership, seq=seq)
        changed = SERVICES[action](request.user, other=other)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect(back)
    messages.success(request, _done(action, other.display_name, changed=changed))
    return redirect(back)


urlpatterns = [
    path("me/people/", people, name="people"),
    path("me/people/choose/", choose_person, name="people_choose"),
    path("me/people/undo/", undo_person, name="people_undo"),
    path("groups/<slug:slug>/room/<int:seq>/person/", room_person, name="room_person"),
]
