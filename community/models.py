"""Members and the crisis resources every page points to.

Members are pseudonymous. The display name is the only thing about a member that other members
ever see; the email is for signing in and for mail to that member alone. No real name is stored.
"""

import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DISPLAY_NAME_MAX = 40


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("We don't recognise the time zone “%(value)s”. Please pick one from the list."),
            params={"value": value},
            code="unknown_time_zone",
        )


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("display_name", email.split("@")[0][:DISPLAY_NAME_MAX])
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("email address"), max_length=254, unique=True)
    display_name = models.CharField(
        _("display name"),
        max_length=DISPLAY_NAME_MAX,
        help_text=_("The only thing other members see of you."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    is_staff = models.BooleanField(
        _("staff"), default=False, help_text=_("Site moderators and staff can use the admin.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
            models.UniqueConstraint(Lower("display_name"), name="user_display_name_unique_ci"),
            models.CheckConstraint(
                condition=~models.Q(display_name=""), name="user_display_name_not_empty"
            ),
        ]

    def __str__(self) -> str:
        # What a template prints for ``{{ user }}`` is what other members may see: never the email.
        return self.display_name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class CrisisResource(models.Model):
    """A place to get help now, shown on the help page and linked from every page's footer."""

    name = models.CharField(_("name"), max_length=120)
    region = models.CharField(
        _("region"), max_length=80, blank=True, help_text=_("For example “United States”.")
    )
    description = models.CharField(_("description"), max_length=300, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    text = models.CharField(_("text or chat"), max_length=120, blank=True)
    url = models.URLField(_("website"), blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("shown"), default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name = _("crisis resource")
        verbose_name_plural = _("crisis resources")

    def __str__(self) -> str:
        return self.name


# --- Notifications ------------------------------------------------------------------------------


class NotificationKind(models.TextChoices):
    MEETING_REMINDER = "meeting_reminder", _("Meeting reminders")
    MEETING_CHANGED = "meeting_changed", _("Meetings moved or cancelled")
    JOIN_REQUEST_DECIDED = "join_request_decided", _("Answers to requests to join")
    SEAT_OFFERED = "seat_offered", _("A seat held for you")
    REPORT_OUTCOME = "report_outcome", _("What happened with a report you made")
    MODERATION_ACTION = "moderation_action", _("Moderation about you")
    MODERATOR_ALERT = "moderator_alert", _("Alerts for moderators")
    CHECK_IN_SHARED = "check_in_shared", _("Check-ins members share with you as a facilitator")
    SAFE_PERSON = "safe_person", _("Safe-person invitations and answers")


# In-app is on for every kind; email only where missing it would cost the member something.
EMAIL_ON_BY_DEFAULT = frozenset(
    {
        NotificationKind.MEETING_REMINDER,
        NotificationKind.MEETING_CHANGED,
        NotificationKind.SEAT_OFFERED,
        NotificationKind.MODERATION_ACTION,
        NotificationKind.MODERATOR_ALERT,
    }
)
IN_APP, EMAIL = "in_app", "email"
CHANNELS = (IN_APP, EMAIL)

# Reminder lead times a member may choose, in minutes: 1 day, 1 hour, 15 minutes.
REMINDER_LEAD_CHOICES = [
    (24 * 60, _("1 day before")),
    (60, _("1 hour before")),
    (15, _("15 minutes before")),
]
REMINDER_LEAD_MINUTES = frozenset(m for m, _label in REMINDER_LEAD_CHOICES)
DEFAULT_REMINDER_LEADS = [24 * 60, 60]


def default_reminder_leads() -> list[int]:
    return list(DEFAULT_REMINDER_LEADS)


class NotificationPreference(models.Model):
    """One member's choices. A member without a row has the defaults (``for_member`` below).

    ``channels`` holds only what the member changed: ``{kind: {"in_app": bool, "email": bool}}``;
    anything missing falls back to the kind's default. Quiet hours are wall-clock times in the
    member's own time zone (``User.time_zone``); start after end crosses midnight; both empty
    means no quiet hours.
    """

    user = models.OneToOneField(
        "community.User", on_delete=models.CASCADE, related_name="notification_preference"
    )
    channels = models.JSONField(_("channels"), default=dict, blank=True)
    reminder_lead_minutes = models.JSONField(
        _("reminder lead times (minutes)"), default=default_reminder_leads, blank=True
    )
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(quiet_start__isnull=True, quiet_end__isnull=True)
                    | (
                        models.Q(quiet_start__isnull=False, quiet_end__isnull=False)
                        & ~models.Q(quiet_start=models.F("quiet_end"))
                    )
                ),
                name="notification_pref_quiet_hours_valid",
            )
        ]

    def __str__(self) -> str:
        return f"Notification preferences of member {self.user_id}"

    @classmethod
    def for_member(cls, user) -> "NotificationPreference":
        """The member's stored preferences, or unsaved defaults (nothing is written)."""
        pref = cls.objects.filter(user=user).first()
        return pref if pref is not None else cls(user=user)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.user.time_zone)

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None

    def wants(self, kind: str, channel: str) -> bool:
        chosen = (self.channels or {}).get(kind, {}).get(channel)
        if chosen is not None:
            return bool(chosen)
        return channel == IN_APP or kind in EMAIL_ON_BY_DEFAULT


class Notification(models.Model):
    """Something a member should know, shown in-app and perhaps emailed.

    ``in_app`` false: the member turned the bell off for this kind and it exists only to be
    emailed. Email state: ``email_pending`` is set while an email is wanted and not yet sent,
    ``email_after`` is the earliest time it may go (the end of quiet hours), ``emailed_at`` is
    set by the one conditional update that claims the send, ``email_failed_at`` when every try
    failed and sending gave up.
    """

    user = models.ForeignKey(
        "community.User", on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=NotificationKind.choices)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, blank=True)
    in_app = models.BooleanField(_("shown in app"), default=True)
    email_pending = models.BooleanField(_("email pending"), default=False)
    email_after = models.DateTimeField(_("email not before"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("emailed"), null=True, blank=True)
    # Set when sending gave up (every retry failed: SMTP down, disk full): shown in the admin,
    # and the email is no longer pending. ``email_error`` names the error's kind, no details.
    email_failed_at = models.DateTimeField(_("email failed"), null=True, blank=True)
    email_error = models.CharField(_("email error"), max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedupe_key"],
                condition=~models.Q(dedupe_key=""),
                name="notification_user_dedupe_key_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["user", "read_at"],
                condition=models.Q(in_app=True, read_at__isnull=True),
                name="notification_unread_idx",
            ),
            models.Index(
                fields=["email_after"],
                condition=models.Q(email_pending=True),
                name="notification_email_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for member {self.user_id}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


# --- A member's own boundaries with other people -----------------------------------------------


class Mute(models.Model):
    """``user`` muted ``muted``: their messages arrive folded for ``user`` ("a message from
    someone you muted"), revealable. Never visible to ``muted``."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mutes")
    muted = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "muted"], name="mute_unique"),
            models.CheckConstraint(
                condition=~models.Q(user=models.F("muted")), name="mute_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"Mute {self.pk}"


class Block(models.Model):
    """``user`` blocked ``blocked``: a mute, plus no invitations, no 1:1 contact, and
    ``blocked`` no longer sees ``user``'s presence. Never visible to ``blocked``."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "blocked"], name="block_unique"),
            models.CheckConstraint(
                condition=~models.Q(user=models.F("blocked")), name="block_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"Block {self.pk}"


# --- A member's own data ------------------------------------------------------------------------


class ExportStatus(models.TextChoices):
    PENDING = "pending", _("Being prepared")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Could not be prepared")


class DataExport(models.Model):
    """One "download my data" request, built by a Celery task. The file is reachable only
    through a signed link for its owner, until ``expires_at``."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_exports")
    status = models.CharField(
        max_length=8, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    requested_at = models.DateTimeField(default=timezone.now)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    content = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="ready")
                | models.Q(expires_at__isnull=False, ready_at__isnull=False),
                name="data_export_ready_has_times",
            ),
        ]

    def __str__(self) -> str:
        return f"Data export {self.pk}"


class AccountErasure(models.Model):
    """A member erased their account while the moderation queue still needed some of it.

    Everything else is gone at once; the scrubbed, inactive ``user`` row stays only so the open
    items keep what moderation needs (reports they made, reports and actions about them, the
    words of their reported or flagged messages, listed in ``kept_message_ids``). When the last
    of those items closes, ``community.services.data.finish_erasures`` erases the rest and
    deletes the row (and this one with it).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="pending_erasure")
    requested_at = models.DateTimeField(default=timezone.now)
    kept_message_ids = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"Account erasure {self.pk}"
