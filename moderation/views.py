"""Members' side of moderation: reporting a message from the chat room, seeing how one's
reports ended, and answering a moderation action with an appeal or a repair note. Thin: the
services decide."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from community.errors import DomainError, NotFound, PermissionDenied
from community.ratelimits import client_ip
from moderation import selectors, services
from moderation.models import (
    APPEAL_MAX_CHARS,
    REPORT_DETAILS_MAX_CHARS,
    AppealKind,
    ModerationAction,
    ReportCategory,
)


class ReportForm(forms.Form):
    category = forms.ChoiceField(choices=ReportCategory.choices)
    details = forms.CharField(required=False, max_length=REPORT_DETAILS_MAX_CHARS)


def _answer(request, slug, *, ok: bool, message: str, status: int = 200, retry_after=None):
    if "application/json" in request.headers.get("Accept", ""):
        body = {"ok": ok, "message": message}
        if retry_after is not None:
            body["retry_after"] = retry_after
        response = JsonResponse(body, status=status)
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response
    (messages.success if ok else messages.error)(request, message)
    return redirect(reverse("groups:room", args=[slug]))


@login_required
@require_POST
def report_message(request, slug: str, seq: int):
    form = ReportForm(request.POST)
    if not form.is_valid():
        message = _("Please choose what kind of problem this is, so the right person looks at it.")
        if "details" in form.errors:
            message = _("Please keep the details under %(max)d characters.") % {
                "max": REPORT_DETAILS_MAX_CHARS
            }
        return _answer(request, slug, ok=False, message=message, status=400)
    try:
        message = selectors.reportable_message(slug, seq, user=request.user)
        services.report_message(
            message,
            reporter=request.user,
            category=form.cleaned_data["category"],
            details=form.cleaned_data["details"],
            ip=client_ip(request),
        )
    except DomainError as error:
        status = (
            404
            if isinstance(error, NotFound)
            else 403
            if isinstance(error, PermissionDenied)
            else 429
            if error.code == "rate_limited"
            else 400
        )
        return _answer(
            request,
            slug,
            ok=False,
            message=error.message,
            status=status,
            retry_after=error.details.get("retry_after"),
        )
    return _answer(
        request,
        slug,
        ok=True,
        message=_(
            "Thank you. A moderator will look at this; the person you reported won't know it "
            "was you. You'll hear how it ended."
        ),
    )


class AppealForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What would you like to send?"),
        choices=AppealKind.choices,
        widget=forms.RadioSelect,
        initial=AppealKind.REPAIR,
    )
    text = forms.CharField(
        label=_("In your own words"),
        help_text=_(
            "What happened, how it looks to you, what you'd do differently. A moderator reads it."
        ),
        max_length=APPEAL_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


@login_required
@require_GET
def mine(request):
    """The member's own reports and how each ended, and moderation about them they can answer."""
    return render(
        request,
        "moderation/mine.html",
        {
            "reports": selectors.my_reports(request.user),
            "actions": selectors.actions_about(request.user),
            "form": AppealForm(),
        },
    )


@login_required
@require_POST
def appeal(request, pk: int):
    action = get_object_or_404(ModerationAction, pk=pk, member=request.user)
    form = AppealForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please choose a kind of note and write a few words."))
        return redirect("moderation:mine")
    try:
        services.submit_appeal(
            action,
            member=request.user,
            text=form.cleaned_data["text"],
            kind=form.cleaned_data["kind"],
        )
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(
            request, _("Thank you. A moderator will read it, and you'll hear back here.")
        )
    return redirect("moderation:mine")
