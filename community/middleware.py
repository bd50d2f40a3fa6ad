import hashlib
import zoneinfo

from django.core.cache import cache
from django.core.exceptions import PermissionDenied as NoClientAddress
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


class UserSessionsMiddleware:
    """allauth.usersessions' activity tracking, at most once per session every few minutes.

    allauth's own middleware writes the session's row on every request; the sessions page only
    shows an approximate "last active", so a short-lived cache key (a digest of the session
    key, which is a secret) lets one request in ``SEEN_EVERY`` through. If the cache is down the
    request is tracked: that costs a write, never a wrong list.
    """

    SEEN_EVERY = 5 * 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and session.session_key and user and user.is_authenticated:
            self._track(request, session.session_key)
        return self.get_response(request)

    def _track(self, request, session_key: str) -> None:
        from allauth.usersessions.models import UserSession  # needs the app registry

        key = "usersession-seen:" + hashlib.sha256(session_key.encode()).hexdigest()[:40]
        try:
            due = cache.add(key, 1, timeout=self.SEEN_EVERY)
        except Exception:  # Redis away: tracking is a nicety, the page still works
            due = True
        if due:
            try:
                UserSession.objects.create_from_request(request)
            except NoClientAddress:  # allauth refuses a request without a client address
                cache.delete(key)
