"""Writes about members. Views, the allauth adapter, demo data and tests all come through here."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.db import transaction

from community.models import User

__all__ = ["apply_member_profile", "create_member", "normalise_display_name", "update_profile"]


def normalise_display_name(value: str) -> str:
    """Collapse runs of white space so “Sam  ” and “Sam” are the same name."""
    return " ".join(value.split())


def apply_member_profile(user: User, *, display_name: str, time_zone: str) -> None:
    """Set the member-chosen fields on a user that is about to be saved by the caller.

    Used by the signup adapter, where allauth owns the save.
    """
    user.display_name = normalise_display_name(display_name)
    user.time_zone = time_zone


@transaction.atomic
def update_profile(user: User, *, display_name: str, time_zone: str) -> User:
    apply_member_profile(user, display_name=display_name, time_zone=time_zone)
    user.full_clean(exclude=["password", "email"])
    user.save(update_fields=["display_name", "time_zone"])
    return user


@transaction.atomic
def create_member(
    *,
    email: str,
    password: str | None,
    display_name: str,
    time_zone: str = "UTC",
    verified: bool = True,
    is_staff: bool = False,
) -> User:
    """Create a member outside the signup flow (demo data, tests, operators' scripts)."""
    user = User.objects.create_user(
        email,
        password,
        display_name=normalise_display_name(display_name),
        time_zone=time_zone,
        is_staff=is_staff,
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=verified, primary=True)
    return user
