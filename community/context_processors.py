from django.conf import settings

from community.selectors import crisis_resources


def site(request):
    return {
        "site_name": settings.SITE_NAME,
        # The footer shows the first resource inline; the rest are on the help page.
        "crisis_resources": crisis_resources,
    }
