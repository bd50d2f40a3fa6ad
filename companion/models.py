"""The practice companion's facts: each member's practice space and the companion's replies.

A practice space owns a private room (a ``groups.Group`` of kind ``practice`` whose only member
is the member), so the conversation is stored, ordered and resumable exactly like any room's.
The companion's replies are messages of kind ``companion`` with no author; ``CompanionReply``
says where each came from. Writes go through ``companion.services``; permission-checked reads
through ``companion.selectors``.

Invariants in the database: one practice space per member and per room, a draft's words and its
``client_id`` travel together, and a space awaiting a crisis answer names the message it is about.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DRAFT_MAX_CHARS = 1000


class PracticeSpace(models.Model):
    """One member's practice space, and where the companion is in its guided flows.

    ``answered_seq`` is the highest of the member's messages the companion has answered (or
    decided to leave unanswered, when resting): everything after it is still waiting. ``flow``
    and ``step`` name the current step of a flow (both empty: no flow), ``slots`` the member's
    words the flow is holding on to (reflected back to them). ``crisis_seq``: the member's
    message that read as crisis language, while the companion waits for their answer to "may I
    let a moderator know?".
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="practice_space"
    )
    room = models.OneToOneField(
        "groups.Group", on_delete=models.CASCADE, related_name="practice_space"
    )
    created_at = models.DateTimeField(default=timezone.now)
    answered_seq = models.PositiveBigIntegerField(default=0)
    flow = models.CharField(max_length=20, blank=True)
    step = models.CharField(max_length=30, blank=True)
    slots = models.JSONField(default=dict, blank=True)
    turns = models.PositiveIntegerField(
        default=0, help_text=_("Replies so far: picks among a step's phrasings, predictably.")
    )
    crisis_seq = models.PositiveBigIntegerField(null=True, blank=True)
    quiet_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Resting after a rate limit or the daily cap: no replies until then."),
    )
    draft = models.CharField(max_length=DRAFT_MAX_CHARS, blank=True)
    draft_client_id = models.UUIDField(null=True, blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    draft_posted_at = models.DateTimeField(null=True, blank=True)
    draft_posted_to = models.ForeignKey(
        "groups.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(draft="") | Q(draft_client_id__isnull=False),
                name="practice_draft_has_client_id",
            ),
            models.CheckConstraint(
                condition=Q(flow="") | ~Q(step=""), name="practice_flow_has_step"
            ),
        ]

    def __str__(self) -> str:
        return f"Practice space {self.pk}"


class ReplySource(models.TextChoices):
    BUILT_IN = "builtin", _("Built-in flows")
    MODEL = "model", _("Generative model")
    FALLBACK = "fallback", _("Built-in, after the model failed or was refused")


class CompanionReply(models.Model):
    """Where one companion message came from. ``about_others``: it names other people (a
    group's meeting, a safe person's usual times), so it is never sent to a generative model."""

    message = models.OneToOneField(
        "groups.Message", on_delete=models.CASCADE, related_name="companion_reply"
    )
    space = models.ForeignKey(PracticeSpace, on_delete=models.CASCADE, related_name="replies")
    source = models.CharField(max_length=10, choices=ReplySource.choices)
    intent = models.CharField(
        max_length=20, blank=True, help_text=_("The kind of reply (companion.engine.Outcome).")
    )
    flow = models.CharField(max_length=20, blank=True)
    step = models.CharField(max_length=30, blank=True)
    about_others = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message_id"]

    def __str__(self) -> str:
        return f"Companion reply {self.pk} ({self.source})"
