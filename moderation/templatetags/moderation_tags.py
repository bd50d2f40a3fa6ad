from django import template

from moderation.models import ReportCategory

register = template.Library()


@register.simple_tag
def report_categories():
    """The categories a member chooses from when reporting, as (value, label) pairs."""
    return ReportCategory.choices
