"""The room as a place to be: check-ins, go-around rounds, and each member's room preferences
(the topics they want softened, and when they last said "not today" to the check-in offer).

Invariants live in the database: a presence level is 1..5, a group check-in names its group,
one active round per group, one turn per member and per position in a round, and at most one
current turn in a round.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from groups.models.core import Group, Message

CHECK_IN_NOTE_MAX_CHARS = 140
CHECK_IN_MAX_FEELINGS = 3
ROUND_PROMPT_MAX_CHARS = 200


class SensitiveTopic(models.TextChoices):
    """The fixed list of topics a member may ask to have softened, and a sender may name in a
    content note. Order is the order they are offered in."""

    SELF_HARM = "self_harm", _("Self-harm")
    SUICIDE = "suicide", _("Suicide")
    ABUSE = "abuse", _("Abuse")
    SEXUAL_VIOLENCE = "sexual_violence", _("Sexual violence")
    VIOLENCE = "violence", _("Violence")
    SUBSTANCES = "substances", _("Substance use")
    EATING_BODY = "eating_body", _("Eating and body")
    GRIEF = "grief", _("Grief and loss")
    MEDICAL = "medical", _("Medical")


class Presence(models.IntegerChoices):
    """ "How present do you feel right now?", from far away to fully here."""

    FAR_AWAY = 1, _("Far away")
    DISTANT = 2, _("A bit distant")
    PARTLY = 3, _("Partly here")
    MOSTLY = 4, _("Mostly here")
    FULLY = 5, _("Fully here")


class Feeling(models.TextChoices):
    """The short list of feeling words a check-in may name (up to three)."""

    CALM = "calm", _("calm")
    TIRED = "tired", _("tired")
    ANXIOUS = "anxious", _("anxious")
    SAD = "sad", _("sad")
    NUMB = "numb", _("numb")
    TENDER = "tender", _("tender")
    RESTLESS = "restless", _("restless")
    OVERWHELMED = "overwhelmed", _("overwhelmed")
    LONELY = "lonely", _("lonely")
    HOPEFUL = "hopeful", _("hopeful")
    GRATEFUL = "grateful", _("grateful")
    SAFE = "safe", _("safe")
    ANGRY = "angry", _("angry")
    CURIOUS = "curious", _("curious")


class CheckInAudience(models.TextChoices):
    PRIVATE = "private", _("Just me")
    GROUP = "group", _("The group")
    FACILITATORS = "facilitators", _("My facilitators only")


class CheckIn(models.Model):
    """One "how present am I" check-in. Private ones have no group or a group for context;
    group ones become a card in the room (``message``); facilitator ones are listed for the
    group's facilitators only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="check_ins"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="check_ins"
    )
    presence = models.PositiveSmallIntegerField(choices=Presence.choices)
    feelings = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=CHECK_IN_NOTE_MAX_CHARS, blank=True)
    audience = models.CharField(
        max_length=12, choices=CheckInAudience.choices, default=CheckInAudience.PRIVATE
    )
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="check_in"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"], name="checkin_user_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(presence__gte=1) & Q(presence__lte=5), name="checkin_presence_range"
            ),
            models.CheckConstraint(
                condition=Q(audience="private") | Q(group__isnull=False),
                name="checkin_shared_has_group",
            ),
        ]

    def __str__(self) -> str:
        return f"Check-in {self.pk}"


class RoomPreference(models.Model):
    """A member's own settings for every room: topics to soften, and the day they last
    answered the check-in offer (so it is never offered twice in a day)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_preference"
    )
    soften_topics = models.JSONField(default=list, blank=True)
    check_in_offered_on = models.DateField(
        null=True,
        blank=True,
        help_text=_("The member's local date they last checked in or skipped the offer."),
    )

    def __str__(self) -> str:
        return f"Room preferences of {self.user_id}"


class RoundState(models.TextChoices):
    ACTIVE = "active", _("In progress")
    ENDED = "ended", _("Ended")


class Round(models.Model):
    """A go-around: a prompt, and one turn for each member who was present when it started.

    Its state lives here, not in any socket, so it survives reconnects and server restarts.
    ``version`` grows with every change, so a reader can tell a newer state from an older one.
    """

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="rounds")
    prompt = models.CharField(max_length=ROUND_PROMPT_MAX_CHARS)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=8, choices=RoundState.choices, default=RoundState.ACTIVE)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["group"], condition=Q(state="active"), name="round_one_active_per_group"
            ),
            models.CheckConstraint(
                condition=Q(state="active", ended_at__isnull=True)
                | Q(state="ended", ended_at__isnull=False),
                name="round_ended_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Round {self.pk} in {self.group_id}"


class TurnStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    CURRENT = "current", _("Their turn")
    SHARED = "shared", _("Shared")
    PASSED = "passed", _("Passed")
    SKIPPED = "skipped", _("Skipped")


class RoundTurn(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="turns")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8, choices=TurnStatus.choices, default=TurnStatus.WAITING)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "position"], name="turn_position_unique"),
            models.UniqueConstraint(fields=["round", "user"], name="turn_user_unique"),
            models.UniqueConstraint(
                fields=["round"], condition=Q(status="current"), name="turn_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"Turn {self.position} of round {self.round_id}"
