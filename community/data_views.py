"""The member's own data: "My data" (export, delete my account) and signed-in sessions."""

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from community import data_selectors, services
from community.data_forms import EraseAccountForm
from community.errors import DomainError
from community.models import ExportStatus


def _my_data_page(request, erase_form, *, status=200):
    exports = [
        {
            "export": export,
            "token": data_selectors.export_link_token(export)
            if export.status == ExportStatus.READY
            else None,
        }
        for export in data_selectors.my_data_exports(request.user)
    ]
    context = {"exports": exports, "erase_form": erase_form}
    return render(request, "community/my_data.html", context, status=status)


@login_required
@never_cache
@require_http_methods(["GET"])
def my_data(request):
    return _my_data_page(request, EraseAccountForm())


@login_required
@require_http_methods(["POST"])
def data_export_request(request):
    export = services.request_data_export(request.user, actor=request.user)
    if export.status == ExportStatus.READY:
        messages.success(request, _("Your copy is ready. The links below work for 7 days."))
    elif export.status == ExportStatus.PENDING:
        messages.info(
            request,
            _(
                "We're preparing your copy. It can take a few minutes; it will be listed here "
                "when it's ready."
            ),
        )
    else:
        messages.error(request, _("We couldn't prepare your copy just now. Please try again."))
    return redirect("my_data")


@login_required
@never_cache
@require_http_methods(["GET"])
def data_export_download(request, token: str):
    """The export as a JSON file. Refusals (forged, expired, someone else's link) are explained
    on the refusal page by ``DomainErrorMiddleware``."""
    export = data_selectors.export_from_link(token, viewer=request.user)
    body = json.dumps(export.content, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    filename = f"my-data-{export.ready_at:%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@never_cache
@require_http_methods(["GET"])
def data_export_view(request, token: str):
    export = data_selectors.export_from_link(token, viewer=request.user)
    context = {
        "export": export,
        "token": token,
        "sections": data_selectors.readable_sections(export.content),
    }
    return render(request, "community/my_data_export.html", context)


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["POST"])
def account_erase(request):
    form = EraseAccountForm(request.POST)
    if form.is_valid():
        try:
            services.erase_account(request.user, **form.service_arguments())
        except DomainError as error:
            form.add_error("password" if error.code == "wrong_password" else None, error.message)
        else:
            logout(request)
            messages.success(
                request,
                _("Your account is deleted. Thank you for the time you spent here. Take care."),
            )
            return redirect("home")
    return _my_data_page(request, form, status=400)


@login_required
@never_cache
@require_http_methods(["GET"])
def my_sessions(request):
    sessions = data_selectors.my_sessions(
        request.user, current_session_key=request.session.session_key
    )
    return render(request, "community/my_sessions.html", {"sessions": sessions})


@login_required
@require_http_methods(["POST"])
def session_end(request, pk: int):
    was_current = services.end_member_session(
        request.user,
        session_id=pk,
        actor=request.user,
        current_session_key=request.session.session_key,
    )
    if was_current:
        logout(request)
        messages.success(request, _("You're signed out here."))
        return redirect("account_login")
    messages.success(request, _("That session has ended; its browser is signed out."))
    return redirect("my_sessions")
