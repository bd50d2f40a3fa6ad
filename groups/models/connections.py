"""Safe persons: one-to-one contact that exists only when both people chose it.

An invitation (``SafePersonInvite``) becomes a ``SafeConnection`` when accepted; the connection
owns a private pair room (a ``Group`` of kind ``pair`` with exactly the two as members), so 1:1
messages get the group chat's guarantees (stored, ordered, resumable, moderated). Each person's
availability windows and short status are seen only by their safe persons and facilitators.

Invariants in the database: nobody invites themselves, one pending invitation per direction,
one live connection per pair (stored with ``user_low`` < ``user_high``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from groups.models.core import Group

INVITE_DAYS = 14
MAX_PENDING_INVITES = 3
STATUS_MAX_CHARS = 80
INVITE_NOTE_MAX_CHARS = 200


class InviteStatus(models.TextChoices):
    PENDING = "pending", _("Not accepted yet")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    EXPIRED = "expired", _("Expired")


class SafePersonInvite(models.Model):
    """An invitation to be someone's safe person. Declining looks, to the inviter, exactly like
    not having answered yet: they only ever see "not accepted yet" until it expires."""

    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="safe_invites_sent"
    )
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="safe_invites_received"
    )
    via_group = models.ForeignKey(
        Group, null=True, on_delete=models.SET_NULL, related_name="+",
        help_text=_("A circle both belonged to when the invitation was sent."),
    )  # fmt: skip
    note = models.CharField(max_length=INVITE_NOTE_MAX_CHARS, blank=True)
    status = models.CharField(
        max_length=10, choices=InviteStatus.choices, default=InviteStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(inviter=F("invitee")), name="safe_invite_not_self"),
            models.UniqueConstraint(
                fields=["inviter", "invitee"],
                condition=Q(status="pending"),
                name="safe_invite_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"Safe-person invitation {self.pk}"


class SafeConnection(models.Model):
    """Two members who both chose each other. Ending it closes the pair room for both (its
    history stays, read-only, for the two and for moderation)."""

    user_low = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    user_high = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    room = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="safe_connection")
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user_low__lt=F("user_high")), name="safe_connection_ordered_pair"
            ),
            models.UniqueConstraint(
                fields=["user_low", "user_high"],
                condition=Q(ended_at__isnull=True),
                name="safe_connection_one_live",
            ),
        ]

    def __str__(self) -> str:
        return f"Safe connection {self.pk}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None

    def other(self, user_id: int) -> int:
        return self.user_high_id if user_id == self.user_low_id else self.user_low_id


class AvailabilityWindow(models.Model):
    """ "Usually around weekday evenings": days of the week (0 = Monday) and a time range, in
    the member's own time zone; others see it converted to theirs."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="availability"
    )
    days = models.JSONField(default=list)
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["user", "start"]

    def __str__(self) -> str:
        return f"Availability {self.pk}"


class SafeStatus(models.Model):
    """A short status ("I feel distant right now") for safe persons and facilitators only. It
    needs no reply and ends by itself at ``expires_at``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="safe_status"
    )
    text = models.CharField(max_length=STATUS_MAX_CHARS)
    set_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("set_at")), name="safe_status_expires_later"
            ),
        ]

    def __str__(self) -> str:
        return f"Status of {self.user_id}"
