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
