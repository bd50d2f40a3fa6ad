from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CommunityConfig(AppConfig):
    default = True
    name = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from community import receivers  # noqa: F401 -- connects the session-ending receivers


class CommunityAdminConfig(admin_apps.AdminConfig):
    """The Django admin with the moderators' site: staff need a second factor (see admin_site)."""

    default = False
    default_site = "community.admin_site.CommunityAdminSite"
