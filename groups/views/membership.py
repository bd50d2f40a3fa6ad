"""Group pages: directory, group page, joining, leaving, agreements, requests, invites."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from community.errors import DomainError, NotFound, PermissionDenied
from community.ratelimits import client_ip
from community.views import refusal
from groups import selectors, services
from groups.forms.membership import (
    POLICY_SHORT,
    AgreementForm,
    DecideRequestForm,
    DirectoryForm,
    GroupForm,
    InviteForm,
    JoinForm,
    ListeningForm,
)
from groups.models import AgreementVersion, Invite, JoinPolicy, JoinRequest, Topic


def _group_or_404(slug):
    try:
        return selectors.get_group(slug)
    except NotFound as e:
        raise Http404(e.message) from e


_refusal = refusal


_SLUG = "group-slug"  # stands for each card's slug in the group page's address


def directory(request):
    form = DirectoryForm(request.GET or None)
    topic = q = ""
    if form.is_valid():
        topic, q = form.cleaned_data["topic"], form.cleaned_data["q"]
    groups = list(selectors.directory_groups(topic=topic, q=q))
    upcoming = selectors.next_meeting_times(groups)
    # What each card shows, worked out here: through template tags and filters it cost a
    # hundred cards most of the page's time. Each label is translated once for the page
    # (get_topic_display translates every topic's label on each call), and each card puts its
    # slug into the group page's address (slugs need no quoting).
    topics = {value: str(label) for value, label in Topic.choices}
    policies = {value: str(label) for value, label in POLICY_SHORT.items()}
    size = _("%(n)s of %(cap)s")
    url_start, _mark, url_end = reverse("groups:detail", kwargs={"slug": _SLUG}).partition(_SLUG)
    for group in groups:
        group.page_url = f"{url_start}{group.slug}{url_end}"
        group.topic_label = topics.get(group.topic, group.topic)
        group.size_label = size % {"n": group.member_count, "cap": group.capacity}
        group.policy_label = policies[group.join_policy]
        starts_at = upcoming.get(group.pk)  # shown on the member's clock, as filters show it
        local = timezone.localtime(starts_at) if starts_at else None
        group.next_meeting = local and formats.date_format(local, "l j F, H:i")
        group.next_meeting_iso = local and local.isoformat()
    mine = list(selectors.my_memberships(request.user))
    unread = selectors.unread_counts(request.user)
    for membership in mine:
        membership.unread = unread.get(membership.group_id, 0)
    return render(
        request,
        "groups/directory.html",
        {
            "form": form,
            "groups": groups,
            "my_memberships": mine,
            "can_create": selectors.may_create_groups(request.user),
        },
    )


def detail(request, slug):
    group = _group_or_404(slug)
    state = selectors.group_page_state(group, request.user)
    occurrences = []
    if state.is_member or state.can_manage:
        occurrences = selectors.upcoming_occurrences(group, user=request.user, limit=5)
    return render(
        request,
        "groups/detail.html",
        {
            "group": group,
            "state": state,
            "occurrences": occurrences,
            "policy_label": POLICY_SHORT[group.join_policy],
            "pending_count": selectors.pending_requests(group).count() if state.can_manage else 0,
            "unread": selectors.unread_counts(request.user).get(group.pk, 0)
            if state.is_member
            else 0,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def join(request, slug=None, token=None):
    group = _group_or_404(slug) if token is None else None
    invite = None
    if token is not None:
        try:
            invite = selectors.invite_for_token(token)
        except NotFound as e:
            return _refusal(request, e)
        group = invite.group
    try:
        # Said before the agreement and the form, not after someone has accepted them.
        selectors.ensure_may_come_back(selectors.membership_for(group, request.user))
    except PermissionDenied as e:
        return _refusal(request, e, group=group)
    form = JoinForm(request.POST or None, initial={"agreement_version": group.agreement_version})
    if request.method == "POST" and form.is_valid():
        try:
            outcome = services.join_group(
                group,
                user=request.user,
                agreement_version=form.cleaned_data["agreement_version"],
                invite=invite,
                message=form.cleaned_data["message"],
                ip=client_ip(request),
            )
        except DomainError as e:
            if e.code == "agreement_changed":
                messages.info(request, e.message)
                group.refresh_from_db()
                form = JoinForm(initial={"agreement_version": group.agreement_version})
            else:
                return _refusal(request, e, group=group)
        else:
            messages.success(request, _JOIN_MESSAGES[outcome.result] % {"group": group.name})
            return redirect("groups:detail", slug=group.slug)
    return render(
        request,
        "groups/join.html",
        {
            "group": group,
            "form": form,
            "invite": invite,
            "asks": group.join_policy == JoinPolicy.APPROVAL and invite is None,
            "state": selectors.group_page_state(group, request.user),
        },
    )


_JOIN_MESSAGES = {
    "joined": _("Welcome to %(group)s. Take your time; listening is a fine way to start."),
    "requested": _("Your request to join %(group)s is with its facilitators. We'll let you know."),
    "waitlisted": _(
        "%(group)s is full right now, so you're on its waitlist. When a seat frees, we'll hold it for you for 48 hours."
    ),
}


def _one_click(service, done: str):
    """A signed-in member's one-button step in a group: call ``service``, say ``done``."""

    @login_required
    @require_POST
    def view(request, slug):
        group = _group_or_404(slug)
        try:
            service(group, user=request.user)
        except DomainError as e:
            return _refusal(request, e, group=group)
        messages.success(request, done % {"group": group.name})
        return redirect("groups:detail", slug=slug)

    return view


leave = _one_click(
    services.leave_group,
    _lazy("You've left %(group)s. You're welcome back whenever you like."),
)
leave_waitlist = _one_click(
    services.leave_waitlist, _lazy("You're off the waitlist for %(group)s.")
)
withdraw_request = _one_click(services.withdraw_join_request, _lazy("Your request is withdrawn."))


@login_required
@require_http_methods(["GET", "POST"])
def agreement(request, slug):
    group = _group_or_404(slug)
    form = AgreementForm(request.POST or None, initial={"version": group.agreement_version})
    if request.method == "POST" and form.is_valid():
        try:
            services.accept_agreement(
                group, user=request.user, version=form.cleaned_data["version"]
            )
        except DomainError as e:
            return _refusal(request, e)
        messages.success(request, _("Thank you. You can post in the room again."))
        return redirect("groups:detail", slug=slug)
    return render(request, "groups/agreement.html", {"group": group, "form": form})


@login_required
@require_POST
def listening(request, slug):
    group = _group_or_404(slug)
    form = ListeningForm(request.POST)
    form.is_valid()  # a missing box means "not listening"; nothing else can be wrong
    try:
        services.set_listening(group, user=request.user, listening=form.cleaned_data["listening"])
    except DomainError as e:
        return _refusal(request, e, group=group)
    if form.cleaned_data["listening"]:
        messages.success(
            request, _("You're listening. Others see a quiet presence; no pressure to post.")
        )
    else:
        messages.success(
            request, _("You're back to taking part. Listening again is one click away.")
        )
    return redirect("groups:detail", slug=slug)


# --- Facilitators ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def create(request):
    try:
        selectors.ensure_may_create_groups(request.user)  # before anyone writes a group out
    except PermissionDenied as e:
        return _refusal(request, e)
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.create_group(actor=request.user, **form.cleaned_data)
        except DomainError as e:
            if isinstance(e, PermissionDenied):
                return _refusal(request, e)
            form.add_error(None, e.message)
        else:
            messages.success(
                request,
                _("%(group)s is ready. Add its first meeting when you like.")
                % {"group": group.name},
            )
            return redirect("groups:detail", slug=group.slug)
    return render(request, "groups/group_form.html", {"form": form, "group": None})


@login_required
@require_http_methods(["GET", "POST"])
def edit(request, slug):
    group = selectors.access_group_to_manage(slug, request.user)
    form = GroupForm(request.POST or None, instance=None if request.POST else group, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_group(group, actor=request.user, **form.cleaned_data)
        except DomainError as e:
            form.add_error(None, e.message)
        else:
            messages.success(request, _("Saved."))
            return redirect("groups:detail", slug=slug)
    return render(request, "groups/group_form.html", {"form": form, "group": group})


@login_required
@require_http_methods(["GET", "POST"])
def requests(request, slug):
    group = selectors.access_group_to_manage(slug, request.user)
    return render(
        request,
        "groups/requests.html",
        {"group": group, "pending": selectors.pending_requests(group), "form": DecideRequestForm()},
    )


@login_required
@require_POST
def decide_request(request, slug, pk):
    group = selectors.access_group_to_manage(slug, request.user)
    join_request = get_object_or_404(JoinRequest, pk=pk, group=group)
    form = DecideRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose whether to welcome them."))
        return redirect("groups:requests", slug=slug)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        outcome = services.decide_join_request(
            join_request, actor=request.user, approve=approve, note=form.cleaned_data["note"]
        )
    except DomainError as e:
        messages.error(request, e.message)
        return redirect("groups:requests", slug=slug)
    name = join_request.user.display_name
    if not approve:
        messages.success(request, _("You answered %(name)s's request.") % {"name": name})
    elif outcome and outcome.result == "waitlisted":
        messages.info(
            request,
            _("The group is full, so %(name)s is first in line on the waitlist.") % {"name": name},
        )
    else:
        messages.success(request, _("%(name)s has joined the group.") % {"name": name})
    return redirect("groups:requests", slug=slug)


@login_required
@require_http_methods(["GET", "POST"])
def invites(request, slug):
    group = selectors.access_group_to_manage(slug, request.user)
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.create_invite(
                group, actor=request.user, days=form.cleaned_data["days"], ip=client_ip(request)
            )
        except DomainError as e:
            form.add_error(None, e.message)
            status = 429 if e.code == "rate_limited" else 200
        else:
            messages.success(request, _("A new invitation link is ready below."))
            return redirect("groups:invites", slug=slug)
    return render(
        request,
        "groups/invites.html",
        {"group": group, "form": form, "invites": group.invites.all()[:20]},
        status=status,
    )


@login_required
@require_POST
def revoke_invite(request, slug, pk):
    group = selectors.access_group_to_manage(slug, request.user)
    services.revoke_invite(get_object_or_404(Invite, pk=pk, group=group), actor=request.user)
    messages.success(request, _("That invitation link no longer works."))
    return redirect("groups:invites", slug=slug)


@login_required
@require_POST
def archive(request, slug):
    group = selectors.access_group_to_manage(slug, request.user)
    archived = bool(request.POST.get("archived"))
    services.archive_group(group, actor=request.user, archived=archived)
    if archived:
        messages.success(
            request, _("%(group)s is archived. Its history stays readable.") % {"group": group.name}
        )
    else:
        messages.success(request, _("%(group)s is open again.") % {"group": group.name})
    return redirect("groups:detail", slug=slug)


def agreement_history(request, slug):
    group = _group_or_404(slug)
    versions = AgreementVersion.objects.filter(group=group)
    return render(request, "groups/agreement_history.html", {"group": group, "versions": versions})


urlpatterns = [
    path("groups/", directory, name="directory"),
    path("groups/new/", create, name="create"),
    path("groups/<slug:slug>/", detail, name="detail"),
    path("groups/<slug:slug>/edit/", edit, name="edit"),
    path("groups/<slug:slug>/archive/", archive, name="archive"),
    path("groups/<slug:slug>/join/", join, name="join"),
    path("groups/<slug:slug>/leave/", leave, name="leave"),
    path("groups/<slug:slug>/waitlist/leave/", leave_waitlist, name="leave_waitlist"),
    path("groups/<slug:slug>/request/withdraw/", withdraw_request, name="withdraw_request"),
    path("groups/<slug:slug>/agreement/", agreement, name="agreement"),
    path("groups/<slug:slug>/agreement/history/", agreement_history, name="agreement_history"),
    path("groups/<slug:slug>/listening/", listening, name="listening"),
    path("groups/<slug:slug>/requests/", requests, name="requests"),
    path("groups/<slug:slug>/requests/<int:pk>/", decide_request, name="decide_request"),
    path("groups/<slug:slug>/invites/", invites, name="invites"),
    path("groups/<slug:slug>/invites/<int:pk>/revoke/", revoke_invite, name="revoke_invite"),
    path("invite/<str:token>/", join, name="invite"),
]
