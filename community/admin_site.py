"""The moderators' admin site. Staff reach it only after a second factor (allauth MFA).

Who may use it at all: site moderators (active staff) and active facilitators of a group
(``moderation.selectors.is_moderator``); each model admin then scopes what they see. Everyone
who may use it needs the same second factor: ``has_permission`` is the one place that rule lives.
"""

from allauth.account.decorators import secure_admin_login
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _


def has_second_factor(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def may_moderate(user) -> bool:
    from moderation.selectors import is_moderator

    return is_moderator(user)


class CommunityAdminSite(admin.AdminSite):
    site_header = _("Moderation")
    site_title = _("Moderation")
    index_title = _("Moderation")
    index_template = "admin/moderation_index.html"

    def has_permission(self, request):
        if not may_moderate(request.user):
            return False
        return not settings.ADMIN_REQUIRE_MFA or has_second_factor(request.user)

    def login(self, request, extra_context=None):
        user = request.user
        if may_moderate(user) and settings.ADMIN_REQUIRE_MFA and not has_second_factor(user):
            messages.info(
                request,
                _(
                    "The moderation area needs a second sign-in step. Please set up an authenticator app first."
                ),
            )
            return redirect("mfa_activate_totp")
        if may_moderate(user) and not user.is_staff:
            # A facilitator, signed in through allauth (and its MFA step) already.
            return redirect("admin:index")
        # Admin sign-in goes through allauth, so its rate limits and MFA prompt apply.
        return secure_admin_login(super().login)(request, extra_context)

    def index(self, request, extra_context=None):
        """The queue comes first: the open items this moderator may see, crisis at the top."""
        from moderation.selectors import queue

        items = queue(actor=request.user, open_only=True)
        extra = {"queue_items": items[:10], "queue_open": items.count()}
        return super().index(request, {**extra, **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        apps.sort(key=lambda app: app["app_label"] != "moderation")
        for app in apps:
            if app["app_label"] == "moderation":
                app["models"].sort(key=lambda model: model["object_name"] != "QueueItem")
        return apps
