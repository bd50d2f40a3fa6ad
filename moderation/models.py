"""Moderation facts. Today: the automatic flag rules the matcher (``moderation.matcher``) uses.

Rules are written through ``moderation.services`` (which checks the actor, validates and tells
every process to rebuild its matcher), never with a bare ``.save()``.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from moderation.matcher import PatternError, parse_patterns

PATTERNS_HELP = _(
    "One pattern a line. A word or phrase (“can't go on”) is found whatever the case, accents, "
    "repeated letters (“diiie”), spacing or dots between letters (“s u i c i d e”, “k.i.l.l”) and "
    "common number-for-letter swaps (“k1ll”, “$uicide”); it must start and end on a word "
    "boundary, and it doesn't count right after a negation in the same sentence (“I would never "
    "hurt myself”). A * between two words stands for up to three other words (“have * pills”). "
    "Add common misspellings as their own lines. A line starting with re: is a Python regular "
    "expression, matched case-insensitively against the message with accents removed and spaces "
    "collapsed, without the other tolerances (use it for phone numbers, addresses and links). "
    "Lines starting with # are notes and blank lines are ignored."
)


class FlagRule(models.Model):
    class Kind(models.TextChoices):
        CRISIS = "crisis", _("Crisis (someone may be at risk)")
        HARASSMENT = "harassment", _("Harassment or hostility")
        PERSONAL_INFO = "personal_info", _("Personal information")
        SPAM = "spam", _("Spam")

    class Action(models.TextChoices):
        QUEUE = "queue", _("Queue for review (the message is shown)")
        HOLD = "hold", _("Hold until a moderator approves it")

    name = models.CharField(_("name"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    patterns = models.TextField(_("patterns"), help_text=PATTERNS_HELP)
    action = models.CharField(
        _("action"),
        max_length=10,
        choices=Action.choices,
        default=Action.QUEUE,
        help_text=_(
            "Crisis rules always queue: expressing distress is never held or hidden. When a "
            "message matches several rules, holding wins over queueing."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("last changed"), default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("last changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = _("flag rule")
        verbose_name_plural = _("flag rules")
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="crisis", action="hold"),
                name="flagrule_crisis_never_held",
            ),
            models.CheckConstraint(condition=~models.Q(name=""), name="flagrule_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list] = {}
        if self.kind == self.Kind.CRISIS and self.action == self.Action.HOLD:
            errors["action"] = [
                ValidationError(
                    _(
                        "Crisis rules always queue for review: expressing distress is never a "
                        "violation, so a crisis message is never held or hidden."
                    ),
                    code="crisis_never_held",
                )
            ]
        if not (self.patterns or "").strip():
            errors["patterns"] = [
                ValidationError(_("Please add at least one pattern."), code="no_patterns")
            ]
        else:
            try:
                usable = parse_patterns(self.patterns)
            except PatternError as error:
                errors["patterns"] = [
                    ValidationError(
                        _("Please fix %(problem)s. Nothing was saved."),
                        params={"problem": problem},
                        code="bad_pattern",
                    )
                    for problem in error.problems
                ]
            else:
                if not usable:
                    errors["patterns"] = [
                        ValidationError(
                            _("Every line is a note; please add at least one pattern."),
                            code="no_patterns",
                        )
                    ]
        if errors:
            raise ValidationError(errors)
