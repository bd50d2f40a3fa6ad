from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from community import services
from community.errors import DomainError, NotFound, PermissionDenied
from community.forms import ProfileForm


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

    403 when the person may not do this, 404 when the thing is not there, 409 when the current
    state says no (a full or archived group, an expired invite, a cancelled occurrence).
    """
    status = (
        403 if isinstance(error, PermissionDenied) else 404 if isinstance(error, NotFound) else 409
    )
    return render(
        request, "refusal.html", {"message": error.message, "group": group}, status=status
    )
