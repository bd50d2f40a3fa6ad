import zoneinfo

from django.utils import timezone

from community.errors import DomainError


class MemberTimezoneMiddleware:
    """Render times in the signed-in member's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class DomainErrorMiddleware:
    """A rule that says no from deep inside a view becomes a kind page, not a server error.

    Views catch ``DomainError`` where they can show it on a form; anything that escapes (for
    example a permission check before any work) is explained here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DomainError):
            from community.views import refusal  # views import forms and services; keep this light

            return refusal(request, exception)
        return None
