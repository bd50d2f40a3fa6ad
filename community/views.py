from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from community import selectors, services
from community.errors import DomainError, NotFound, PermissionDenied
from community.forms import NotificationPreferencesForm, ProfileForm
from community.models import NotificationKind, NotificationPreference


def home(request):
    return render(request, "community/home.html")


def help_now(request):
    return render(request, "community/help.html")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    form = ProfileForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.update_profile(request.user, **form.cleaned_data)
        messages.success(request, _("Your details are saved."))
        return redirect("profile")
    return render(request, "community/profile.html", {"form": form})


def refusal(request, error: DomainError, *, group=None):
    """A broken rule, explained kindly on a page of its own. Nothing was changed.

    403 when the person may not do this, 404 when the thing is not there, 429 (with
    Retry-After) when a rate limit says "not just now", 409 when the current state says no (a
    full or archived group, an expired invite, a cancelled occurrence).
    """
    status = (
        403
        if isinstance(error, PermissionDenied)
        else 404
        if isinstance(error, NotFound)
        else 429
        if error.code == "rate_limited"
        else 409
    )
    response = render(
        request, "refusal.html", {"message": error.message, "group": group}, status=status
    )
    if retry_after := error.details.get("retry_after"):
        response["Retry-After"] = str(retry_after)
    return response


# --- Notifications --------------------------------------------------------------------------------


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


@login_required
@require_http_methods(["GET"])
def notifications(request):
    page = selectors.notifications_page(request.user, page=request.GET.get("page"))
    return render(request, "community/notifications.html", {"page": page})


@login_required
@require_http_methods(["POST"])
def notification_read(request, pk: int):
    services.mark_notification_read(request.user, actor=request.user, notification_id=pk)
    return redirect(_safe_next(request, reverse("notifications")))


@login_required
@require_http_methods(["POST"])
def notifications_read_all(request):
    changed = services.mark_all_notifications_read(request.user, actor=request.user)
    if changed:
        messages.success(request, _("All your notifications are marked as read."))
    return redirect(_safe_next(request, reverse("notifications")))


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request):
    preference = NotificationPreference.for_member(request.user)
    form = NotificationPreferencesForm(
        request.POST or None, user=request.user, preference=preference
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_preferences(
                request.user, actor=request.user, **form.service_arguments()
            )
        except DomainError as error:
            field = error.details.get("field")
            form.add_error(field if field in form.fields else None, error.message)
        else:
            messages.success(request, _("Your notification choices are saved."))
            return redirect("notification_preferences")
    status = 400 if form.is_bound else 200
    return render(request, "community/notification_preferences.html", {"form": form}, status=status)


@csrf_exempt  # RFC 8058 one-click unsubscribe: mail clients POST without a CSRF token
@require_http_methods(["GET", "POST"])
def notification_unsubscribe(request, token: str):
    """GET asks to confirm (and changes nothing); POST turns that kind of email off.

    A forged, expired or someone else's link changes nothing and says so.
    """
    actor = request.user if request.user.is_authenticated else None
    try:
        kind = services.unsubscribe_by_token(token, actor=actor, commit=request.method == "POST")
    except DomainError as error:
        status = 403 if isinstance(error, PermissionDenied) else 400
        return render(
            request, "community/unsubscribe.html", {"error": error.message}, status=status
        )
    context = {"kind_label": NotificationKind(kind).label, "done": request.method == "POST"}
    return render(request, "community/unsubscribe.html", context)
