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


# --- Reports, the queue, actions, appeals, the audit log ------------------------------------
#
# None of these models' ``__str__`` ever includes a message body, a report's details or an
# appeal's words: ``str()`` lands in Django's admin LogEntry and in logs.


class ReportCategory(models.TextChoices):
    HARASSMENT = "harassment", _("Harassment or hostility")
    UNSAFE = "unsafe", _("Unsafe or graphic content")
    PERSONAL_INFO = "personal_info", _("Sharing someone's personal information")
    SPAM = "spam", _("Spam")
    WORRIED = "worried", _("I'm worried about this person")
    OTHER = "other", _("Other")


class ReportOutcome(models.TextChoices):
    PENDING = "pending", _("Being looked at")
    ACTION_TAKEN = "action_taken", _("A moderator took action")
    NO_ACTION = "no_action", _("A moderator looked and took no action")


REPORT_DETAILS_MAX_CHARS = 1000


class Report(models.Model):
    """A member's report of a message or of a member. The reported person never learns who
    reported them. One person reporting the same message twice makes one report."""

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_reports"
    )
    group = models.ForeignKey("groups.Group", on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        "groups.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reported_member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    category = models.CharField(_("category"), max_length=20, choices=ReportCategory.choices)
    details = models.TextField(_("details"), blank=True, max_length=REPORT_DETAILS_MAX_CHARS)
    created_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(
        max_length=20, choices=ReportOutcome.choices, default=ReportOutcome.PENDING
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["reporter", "message"],
                condition=models.Q(message__isnull=False),
                name="report_once_per_message",
            ),
            models.CheckConstraint(
                condition=models.Q(message__isnull=False) | models.Q(reported_member__isnull=False),
                name="report_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"Report {self.pk} ({self.category})"


class ItemKind(models.TextChoices):
    CRISIS = "crisis", _("Someone may be at risk")
    HELD = "held", _("Held message")
    REPORT = "report", _("Report")
    FLAG = "flag", _("Automatic flag")
    APPEAL = "appeal", _("Appeal or repair note")


# Higher first. Crisis always tops the queue.
ITEM_PRIORITY = {
    ItemKind.CRISIS: 100,
    ItemKind.HELD: 50,
    ItemKind.REPORT: 40,
    ItemKind.FLAG: 30,
    ItemKind.APPEAL: 20,
}


class ItemStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLAIMED = "claimed", _("Claimed")
    CLOSED = "closed", _("Closed")


class QueueItem(models.Model):
    """One thing for a moderator to look at. A moderator claims it before acting on it.

    Written only by ``moderation.services``; claiming is a conditional UPDATE that touches
    exactly one row, so two moderators can never hold the same item.
    """

    kind = models.CharField(max_length=10, choices=ItemKind.choices)
    priority = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.OPEN)
    group = models.ForeignKey(
        "groups.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    message = models.ForeignKey(
        "groups.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.CASCADE, related_name="items"
    )
    appeal = models.ForeignKey(
        "Appeal", null=True, blank=True, on_delete=models.CASCADE, related_name="items"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The member the item is about."),
    )
    rule_kinds = models.CharField(
        max_length=100, blank=True, help_text=_("The kinds of flag rules the message matched.")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("queue item")
        verbose_name_plural = _("queue items")
        ordering = ["-priority", "created_at"]
        indexes = [
            models.Index(fields=["status", "-priority", "created_at"], name="queue_order"),
            models.Index(fields=["group", "status"], name="queue_group_status"),
        ]
        constraints = [
            # One open flag, held or crisis item per message (screening twice makes one).
            models.UniqueConstraint(
                fields=["kind", "message"],
                condition=models.Q(message__isnull=False)
                & models.Q(kind__in=["flag", "held", "crisis"])
                & ~models.Q(status="closed"),
                name="queue_one_open_item_per_message",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", assignee__isnull=True)
                | models.Q(status="claimed", assignee__isnull=False)
                | models.Q(status="closed"),
                name="queue_claimed_has_assignee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ActionKind(models.TextChoices):
    HIDE = "hide", _("Hid a message")
    RESTORE = "restore", _("Restored a message")
    APPROVE = "approve", _("Approved a held message")
    REJECT = "reject", _("Kept a held message back")
    WARN = "warn", _("Warning")
    MUTE = "mute", _("Mute")
    REMOVE = "remove", _("Removed from the group")
    BAN = "ban", _("Banned from the site")
    DISMISS = "dismiss", _("Dismissed")
    RESOLVE = "resolve", _("Resolved")
    REINSTATE = "reinstate", _("Welcomed back")


class ModerationAction(models.Model):
    """What a moderator did to a member or a message: the member's moderation history."""

    kind = models.CharField(max_length=12, choices=ActionKind.choices)
    item = models.ForeignKey(
        QueueItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="moderation_actions",
    )
    group = models.ForeignKey(
        "groups.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    message = models.ForeignKey(
        "groups.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text=_("When a mute ends."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("moderation action")
        verbose_name_plural = _("moderation actions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class AppealKind(models.TextChoices):
    APPEAL = "appeal", _("Appeal")
    REPAIR = "repair", _("Repair note")


APPEAL_MAX_CHARS = 2000


class Appeal(models.Model):
    """A member's reply to an action: an appeal, or a repair note ("what happened, what I'd do
    differently"). It enters the queue; a facilitator can welcome them back."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_appeals"
    )
    action = models.ForeignKey(ModerationAction, on_delete=models.CASCADE, related_name="appeals")
    kind = models.CharField(max_length=10, choices=AppealKind.choices, default=AppealKind.APPEAL)
    text = models.TextField(max_length=APPEAL_MAX_CHARS)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("appeal or repair note")
        verbose_name_plural = _("appeals and repair notes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class AppendOnlyError(Exception):
    """The audit log is append-only: its rows are never changed or deleted."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries can't be changed.")

    def delete(self):
        raise AppendOnlyError("Audit entries can't be deleted.")


class AuditEntry(models.Model):
    """One row per moderator action and per view of a queue item's content. Append-only.

    ``save()`` refuses to update an existing row, ``delete()`` refuses, and the queryset's
    ``update()`` and ``delete()`` refuse too, so neither code nor the admin can change the log.
    Beneath that, the database refuses every UPDATE and DELETE of a row (a trigger, migration
    0004), whoever sends it. It holds no message bodies, report details, appeal words or health
    details: only ids, action names, the moderator's reason, and the result.

    Deleting an account still clears the ``actor`` link of its rows (the rows stay): the
    database does it once the account row is gone (``ON DELETE SET NULL`` on PostgreSQL, a
    trigger on SQLite), which is the one change the trigger allows. So the model says
    ``DO_NOTHING``: Django's own SET_NULL would update the rows while the account still exists.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        # The database clears it after the account row is deleted (see the docstring).
        on_delete=models.DO_NOTHING,
        related_name="+",
    )
    action = models.CharField(max_length=30)
    target_type = models.CharField(max_length=30)
    target_id = models.PositiveBigIntegerField(null=True)
    group_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text=_("The group the target belongs to (for scoping).")
    )
    reason = models.TextField(blank=True)
    result = models.CharField(max_length=30, default="ok")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type} {self.target_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise AppendOnlyError("Audit entries can't be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries can't be deleted.")
