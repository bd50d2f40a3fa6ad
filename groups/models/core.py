"""Small groups, their agreements, who belongs, and when they meet.

Invariants live in the database: one membership per person and group, one open join request and
one waitlist place per person and group, capacity within 2..20, an occurrence ends after it
starts. Writes go through ``groups.services``; reads that check permission through
``groups.selectors``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DEFAULT_CAPACITY = 12
MAX_CAPACITY = 20
SEAT_OFFER_HOURS = 48


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Topic(models.TextChoices):
    RELATIONAL = "relational", _("Relational trauma")
    CHILDHOOD = "childhood", _("Childhood and family")
    RELATIONSHIPS = "relationships", _("After a relationship")
    CONNECTION = "connection", _("Loneliness and connection")
    GRIEF = "grief", _("Grief and loss")
    EVERYDAY = "everyday", _("Work and everyday life")
    IDENTITY = "identity", _("Identity and belonging")
    PARENTING = "parenting", _("Parenting")


class JoinPolicy(models.TextChoices):
    OPEN = "open", _("Open: join after reading the agreement")
    APPROVAL = "approval", _("Ask to join: a facilitator says yes")
    INVITE = "invite", _("Invitation only")


class GroupKind(models.TextChoices):
    """A circle is a support group. A pair is the private 1:1 room of two safe persons
    (``SafeConnection``): it reuses the room, its protocol and moderation, and is never listed,
    joined or scheduled like a circle. A practice room is one member's private space with the
    practice companion (``companion.PracticeSpace``): the member is its only member, and the
    companion's replies are messages of kind ``companion`` with no author."""

    CIRCLE = "circle", _("Circle")
    PAIR = "pair", _("Safe-person pair")
    PRACTICE = "practice", _("Practice space")


class Group(models.Model):
    kind = models.CharField(max_length=8, choices=GroupKind.choices, default=GroupKind.CIRCLE)
    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("address"), max_length=80, unique=True)
    topic = models.CharField(_("topic"), max_length=20, choices=Topic.choices)
    description = models.CharField(_("short description"), max_length=300)
    agreement = models.TextField(
        _("group agreement"), help_text=_("The group's own rules, shown before anyone joins.")
    )
    agreement_version = models.PositiveIntegerField(_("agreement version"), default=1)
    capacity = models.PositiveSmallIntegerField(
        _("size limit"), default=DEFAULT_CAPACITY, help_text=_("At most 20 people.")
    )
    join_policy = models.CharField(
        _("how to join"), max_length=10, choices=JoinPolicy.choices, default=JoinPolicy.OPEN
    )
    is_listed = models.BooleanField(_("listed in the directory"), default=True)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__gte=2) & Q(capacity__lte=MAX_CAPACITY),
                name="group_capacity_2_to_20",
            ),
            models.CheckConstraint(
                condition=Q(agreement_version__gte=1), name="group_agreement_version_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class AgreementVersion(models.Model):
    """Every version of a group's agreement, so an acceptance names exactly what was read."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="agreement_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["group", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["group", "version"], name="agreement_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.group} v{self.version}"


class Role(models.TextChoices):
    MEMBER = "member", _("Member")
    FACILITATOR = "facilitator", _("Facilitator")


class MembershipStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    LEFT = "left", _("Left")
    REMOVED = "removed", _("Removed by a moderator")
    BANNED = "banned", _("Banned from the group")


class Membership(models.Model):
    """A person's place in a group. A mute is a time, not a status: it ends by itself."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(
        max_length=10, choices=MembershipStatus.choices, default=MembershipStatus.ACTIVE
    )
    muted_until = models.DateTimeField(null=True, blank=True)
    listening = models.BooleanField(
        _("listening"),
        default=False,
        help_text=_("Listen-only: present quietly, no pressure to post."),
    )
    agreement_version = models.PositiveIntegerField(
        _("agreement version accepted"), null=True, blank=True
    )
    agreement_accepted_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    # Chat: the highest room ``seq`` this member has read (unread counts), and whether others
    # see them in the room's presence list.
    last_read_seq = models.PositiveBigIntegerField(default=0)
    hide_presence = models.BooleanField(
        _("hide my presence"),
        default=False,
        help_text=_("Others in the room won't see that you're here."),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["group", "status"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"

    @property
    def is_active(self) -> bool:
        return self.status == MembershipStatus.ACTIVE

    @property
    def is_facilitator(self) -> bool:
        return self.is_active and self.role == Role.FACILITATOR

    def is_muted(self, now=None) -> bool:
        return self.muted_until is not None and self.muted_until > (now or timezone.now())

    def agreement_is_current(self) -> bool:
        return self.agreement_version == self.group.agreement_version


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a facilitator")
    APPROVED = "approved", _("Approved")
    DECLINED = "declined", _("Declined")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class JoinRequest(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="join_requests")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="join_requests"
    )
    agreement_version = models.PositiveIntegerField()
    message = models.CharField(_("a few words (optional)"), max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(_("note to the person"), max_length=500, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "user"],
                condition=Q(status="pending"),
                name="join_request_one_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk} to {self.group}"


class Invite(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=64, unique=True, default=new_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="invite_expires_after_creation"
            )
        ]

    def __str__(self) -> str:
        return f"Invite #{self.pk} to {self.group}"

    def is_usable(self, now=None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())


class WaitStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Seat offered")
    JOINED = "joined", _("Joined")
    EXPIRED = "expired", _("Offer lapsed")
    WITHDRAWN = "withdrawn", _("Left the waitlist")


class WaitlistEntry(models.Model):
    """A place in line for a full group. An offered seat is held for 48 hours."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="waitlist")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="waitlist_entries"
    )
    status = models.CharField(max_length=10, choices=WaitStatus.choices, default=WaitStatus.WAITING)
    created_at = models.DateTimeField(default=timezone.now)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "user"],
                condition=Q(status__in=["waiting", "offered"]),
                name="waitlist_one_place",
            ),
            models.CheckConstraint(
                condition=~Q(status="offered") | Q(offer_expires_at__isnull=False),
                name="waitlist_offer_has_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Waitlist #{self.pk} for {self.group}"

    @staticmethod
    def offer_window() -> timedelta:
        return timedelta(hours=SEAT_OFFER_HOURS)


# --- Meetings ---------------------------------------------------------------------------------


class Recurrence(models.TextChoices):
    NONE = "none", _("Once")
    WEEKLY = "weekly", _("Every week")
    BIWEEKLY = "biweekly", _("Every two weeks")
    MONTHLY = "monthly", _("Every month, same weekday")


class Location(models.TextChoices):
    ROOM = "room", _("The group's chat room")
    VIDEO = "video", _("A video call")


class Meeting(models.Model):
    """A scheduled meeting, possibly recurring. Times recur on the wall clock of ``time_zone``."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="meetings")
    title = models.CharField(_("title"), max_length=120)
    starts_at = models.DateTimeField(_("first start"))
    time_zone = models.CharField(_("time zone"), max_length=64)
    duration_minutes = models.PositiveSmallIntegerField(_("length in minutes"), default=60)
    recurrence = models.CharField(
        max_length=10, choices=Recurrence.choices, default=Recurrence.NONE
    )
    recurrence_count = models.PositiveSmallIntegerField(
        _("number of meetings"), null=True, blank=True
    )
    recurrence_until = models.DateField(_("repeat until"), null=True, blank=True)
    facilitator_note = models.CharField(_("note from the facilitator"), max_length=500, blank=True)
    location = models.CharField(max_length=10, choices=Location.choices, default=Location.ROOM)
    video_url = models.URLField(_("video link"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=5) & Q(duration_minutes__lte=600),
                name="meeting_duration_5_to_600",
            ),
            models.CheckConstraint(
                condition=~Q(location="video") | ~Q(video_url=""),
                name="meeting_video_has_link",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class OccurrenceStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    CANCELLED = "cancelled", _("Cancelled")


class Occurrence(models.Model):
    """One sitting of a meeting. Moving or cancelling one changes only this row."""

    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="occurrences")
    original_start = models.DateTimeField(help_text=_("Where the recurrence put it; its identity."))
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=OccurrenceStatus.choices, default=OccurrenceStatus.SCHEDULED
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.UniqueConstraint(fields=["meeting", "original_start"], name="occurrence_unique"),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="occurrence_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["starts_at", "status"])]

    def __str__(self) -> str:
        return f"{self.meeting} at {self.starts_at:%Y-%m-%d %H:%M} UTC"

    @property
    def is_cancelled(self) -> bool:
        return self.status == OccurrenceStatus.CANCELLED


class RsvpAnswer(models.TextChoices):
    GOING = "going", _("Going")
    MAYBE = "maybe", _("Maybe")
    NOT_GOING = "not_going", _("Not going")


class Rsvp(models.Model):
    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="rsvps")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rsvps"
    )
    answer = models.CharField(max_length=10, choices=RsvpAnswer.choices)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["occurrence", "user"], name="rsvp_unique"),
        ]

    def __str__(self) -> str:
        return f"RSVP #{self.pk}"


class CalendarFeed(models.Model):
    """A member's private calendar feed. Revoking replaces the token; old links stop working."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token = models.CharField(max_length=64, unique=True, default=new_token)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Calendar feed #{self.pk}"


# --- Chat -------------------------------------------------------------------------------------

MESSAGE_MAX_CHARS = 4000
CONTENT_WARNING_MAX_CHARS = 80
EDIT_WINDOW = timedelta(minutes=10)


class MessageKind(models.TextChoices):
    TEXT = "text", _("Message")
    WAVE = "wave", _("Wave")
    CHECK_IN = "checkin", _("Check-in")
    # The practice companion's reply in a practice room (``companion``): no author, a program.
    COMPANION = "companion", _("Companion reply")


class ReactionKind(models.TextChoices):
    """The small, fixed set of gentle reactions. Order is the order they are shown in."""

    HEART = "heart", _("Heart")
    HEAR_YOU = "hear_you", _("I hear you")
    ME_TOO = "me_too", _("Me too")
    STRENGTH = "strength", _("Sending strength")


class Message(models.Model):
    """One message in a group's room. ``seq`` numbers a group's messages 1, 2, 3… with no gaps.

    A deleted message keeps its row and ``seq`` (so nobody sees a gap) but loses its words.
    A hidden message (moderation) keeps its words for moderators; members see only that it was
    hidden.
    """

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.UUIDField(help_text=_("Chosen by the sender's browser; makes retries safe."))
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT)
    body = models.CharField(max_length=MESSAGE_MAX_CHARS, blank=True)
    content_warning = models.CharField(max_length=CONTENT_WARNING_MAX_CHARS, blank=True)
    topics = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Sensitive topics (SensitiveTopic values) the message touches: named by its "
            "content note or recognised by the topic matcher. Softened for members who ask."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    hidden_at = models.DateTimeField(null=True, blank=True)
    held_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "Set while an automatic flag holds the message for a moderator: only its author "
            "sees it (marked as waiting) until it is approved."
        ),
    )
    rev = models.PositiveBigIntegerField(
        default=0,
        help_text=_(
            "The group's change number of this message's latest edit, deletion, hide or "
            "reaction change (0: never changed). Lets readers catch up on changes they missed."
        ),
    )

    class Meta:
        ordering = ["group", "seq"]
        indexes = [models.Index(fields=["group", "rev"], name="message_group_rev")]
        constraints = [
            models.UniqueConstraint(fields=["group", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["group", "author", "client_id"], name="message_client_id_unique"
            ),
            models.CheckConstraint(condition=Q(seq__gte=1), name="message_seq_positive"),
            models.CheckConstraint(
                condition=~Q(kind="text") | ~Q(body="") | Q(deleted_at__isnull=False),
                name="message_text_has_body",
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.group_id}#{self.seq}"

    @property
    def is_visible(self) -> bool:
        return self.deleted_at is None and self.hidden_at is None


class MessageReaction(models.Model):
    """One member's gentle reaction to a message; toggled, so at most one of each kind."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reaction = models.CharField(max_length=12, choices=ReactionKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "reaction"], name="message_reaction_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reaction} on {self.message}"


# --- Reminders --------------------------------------------------------------------------------


class ReminderStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    CLAIMED = "claimed", _("Being sent")
    SENT = "sent", _("Sent")
    DROPPED = "dropped", _("Not sent")


class Reminder(models.Model):
    """One reminder for one member before one sitting, ``lead_minutes`` ahead.

    A row, not a Celery countdown: the every-30-seconds beat task claims due rows, sends each
    through ``community.services.notify`` and marks it sent (``groups.services.reminders``).
    ``due_at`` already respects the member's quiet hours. A row is never deleted while its
    sitting exists: a reminder that is no longer wanted is ``dropped`` and may be re-armed, so
    its id (the notification's dedupe key) stays the same and it can never go out twice.
    """

    occurrence = models.ForeignKey(Occurrence, on_delete=models.CASCADE, related_name="reminders")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="meeting_reminders"
    )
    lead_minutes = models.PositiveIntegerField(_("minutes before the meeting"))
    due_at = models.DateTimeField(_("due"))
    status = models.CharField(
        max_length=10, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["occurrence", "user", "lead_minutes"], name="reminder_unique"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="reminder_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="claimed") | Q(claimed_at__isnull=False),
                name="reminder_claimed_has_time",
            ),
        ]
        indexes = [
            # The beat task's two queries: due pending rows, and stale claims.
            models.Index(
                fields=["due_at"], condition=Q(status="pending"), name="reminder_pending_due_idx"
            ),
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="claimed"),
                name="reminder_claimed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder #{self.pk} ({self.lead_minutes} min)"
