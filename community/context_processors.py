from django.conf import settings

from community.selectors import crisis_resources


def site(request):
    return {
        "site_name": settings.SITE_NAME,
        # The footer shows the first resource inline; the rest are on the help page.
        "crisis_resources": crisis_resources,
    }


def notifications(request):
    """The bell's unread count, on every page of a signed-in member (one indexed count)."""
    from community.selectors import unread_notification_count

    return {"unread_notifications": unread_notification_count(getattr(request, "user", None))}
