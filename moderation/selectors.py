"""Reads about moderation. Reads for people check who is asking; the matcher's reads are internal."""

from __future__ import annotations

from django.db.models import Count, Max

from community.errors import PermissionDenied
from moderation.matcher import RuleSpec
from moderation.models import FlagRule


def can_manage_flag_rules(user) -> bool:
    """Flag rules apply to every group, so only site moderators (staff) see and change them."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def ensure_can_manage_flag_rules(user) -> None:
    if not can_manage_flag_rules(user):
        raise PermissionDenied(
            "Only site moderators can see and change the automatic flag rules.",
            code="flag_rules_forbidden",
        )


def list_flag_rules(*, actor):
    ensure_can_manage_flag_rules(actor)
    return FlagRule.objects.order_by("kind", "name")


def enabled_rule_specs() -> list[RuleSpec]:
    """What the matcher compiles: the enabled rules' ids, kinds, actions and patterns."""
    return [
        RuleSpec(id=row["id"], kind=row["kind"], action=row["action"], patterns=row["patterns"])
        for row in FlagRule.objects.filter(enabled=True)
        .order_by("id")
        .values("id", "kind", "action", "patterns")
    ]


def flag_rules_fingerprint() -> str:
    """Changes whenever a rule is added, edited or deleted (the matcher's fallback version)."""
    row = FlagRule.objects.aggregate(count=Count("id"), latest=Max("updated_at"), top=Max("id"))
    latest = row["latest"].isoformat() if row["latest"] else "-"
    return f"{row['count']}:{row['top']}:{latest}"
