"""The admin's note on the practice companion: whether its generative model is on."""

from django import template

from companion.backends import backend_status

register = template.Library()


@register.inclusion_tag("companion/admin_status.html")
def companion_backend_status() -> dict:
    return {"status": backend_status()}
