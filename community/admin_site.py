"""The moderators' admin site. Staff reach it only after a second factor (allauth MFA)."""

from allauth.account.decorators import secure_admin_login
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _


def has_second_factor(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class CommunityAdminSite(admin.AdminSite):
    site_header = _("Moderation")
    site_title = _("Moderation")
    index_title = _("Moderation")

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        return not settings.ADMIN_REQUIRE_MFA or has_second_factor(request.user)

    def login(self, request, extra_context=None):
        user = request.user
        if (
            user.is_authenticated
            and user.is_active
            and user.is_staff
            and settings.ADMIN_REQUIRE_MFA
            and not has_second_factor(user)
        ):
            messages.info(
                request,
                _(
                    "The moderation area needs a second sign-in step. Please set up an authenticator app first."
                ),
            )
            return redirect("mfa_activate_totp")
        # Admin sign-in goes through allauth, so its rate limits and MFA prompt apply.
        return secure_admin_login(super().login)(request, extra_context)
