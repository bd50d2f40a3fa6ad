"""A member's content boundaries page, ``/me/boundaries/``: the topics they want softened."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from community.errors import DomainError
from groups import selectors, services
from groups.forms.boundaries import ContentBoundariesForm


@login_required
@require_http_methods(["GET", "POST"])
def content_boundaries(request):
    """GET shows the choices; POST saves them (bad input: 400, nothing changed)."""
    current = sorted(selectors.content_boundaries(request.user))
    # Not ``request.POST or None``: a form with every box cleared posts no topics at all.
    data = request.POST if request.method == "POST" else None
    form = ContentBoundariesForm(data, initial={"topics": current})
    if request.method == "POST" and form.is_valid():
        try:
            services.set_content_boundaries(
                request.user, actor=request.user, topics=form.cleaned_data["topics"]
            )
        except DomainError as error:
            form.add_error("topics", error.message)
        else:
            messages.success(request, _("Saved. Your rooms will soften these topics for you."))
            return redirect("groups:boundaries")
    status = 400 if form.is_bound else 200
    return render(request, "groups/boundaries.html", {"form": form}, status=status)


urlpatterns = [path("me/boundaries/", content_boundaries, name="boundaries")]
