"""Writes about moderation: plain ``verb_noun`` functions with an explicit actor.

Flag rules: every write checks the actor, validates the rule (a bad regular expression or a
crisis rule set to hold is refused with a kind message and nothing is saved), and tells every
process to rebuild its matcher, at once and again after the transaction commits.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from community.errors import DomainError
from moderation.matcher import bump_rules_version
from moderation.models import FlagRule
from moderation.selectors import ensure_can_manage_flag_rules

logger = logging.getLogger(__name__)

__all__ = ["create_flag_rule", "delete_flag_rule", "update_flag_rule"]

_EDITABLE = ("name", "kind", "patterns", "action", "enabled")


def _validate(rule: FlagRule) -> None:
    try:
        rule.full_clean()
    except ValidationError as error:
        messages = [str(message) for field in error.message_dict.values() for message in field]
        code = (
            "crisis_never_held"
            if rule.kind == FlagRule.Kind.CRISIS and rule.action == FlagRule.Action.HOLD
            else "invalid_flag_rule"
        )
        raise DomainError(" ".join(messages), code=code, errors=error.message_dict) from None


def _rules_changed() -> None:
    # Now, so this process (and this transaction) sees the change; after commit, so no process
    # keeps a matcher it rebuilt from the rules as they were before the commit.
    bump_rules_version()
    transaction.on_commit(bump_rules_version)


def create_flag_rule(
    *,
    actor,
    name: str,
    kind: str,
    patterns: str,
    action: str = FlagRule.Action.QUEUE,
    enabled: bool = True,
) -> FlagRule:
    ensure_can_manage_flag_rules(actor)
    now = timezone.now()
    rule = FlagRule(
        name=(name or "").strip(),
        kind=kind,
        patterns=patterns or "",
        action=action,
        enabled=enabled,
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )
    _validate(rule)
    try:
        with transaction.atomic():
            rule.save(force_insert=True)
            _rules_changed()
    except IntegrityError:  # another moderator took the name a moment ago
        raise DomainError(
            "There is already a flag rule with this name; please pick another.",
            code="flag_rule_name_taken",
        ) from None
    logger.info("flag rule %s created by member %s", rule.pk, actor.pk)
    return rule


def update_flag_rule(rule: FlagRule, *, actor, **changes) -> FlagRule:
    """Change some of a rule's ``name``, ``kind``, ``patterns``, ``action`` and ``enabled``.

    On refusal the rule object and the database are left exactly as they were.
    """
    ensure_can_manage_flag_rules(actor)
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise TypeError(f"update_flag_rule() can't change {', '.join(sorted(unknown))}")
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
    candidate = FlagRule.objects.get(pk=rule.pk)
    for field, value in changes.items():
        setattr(candidate, field, value)
    _validate(candidate)
    candidate.updated_at = timezone.now()
    candidate.updated_by = actor
    fields = [*changes, "updated_at", "updated_by"]
    with transaction.atomic():
        candidate.save(update_fields=fields)
        _rules_changed()
    for field in fields:
        setattr(rule, field, getattr(candidate, field))
    logger.info("flag rule %s changed by member %s", rule.pk, actor.pk)
    return rule


def delete_flag_rule(rule: FlagRule, *, actor) -> None:
    ensure_can_manage_flag_rules(actor)
    rule_id = rule.pk
    with transaction.atomic():
        FlagRule.objects.filter(pk=rule_id).delete()
        _rules_changed()
    logger.info("flag rule %s deleted by member %s", rule_id, actor.pk)
