"""Factory functions for synthetic test data. Every name and address here is made up."""

import itertools

from community.services import create_member

PASSWORD = "quiet-lantern-harbour-42"
_counter = itertools.count(1)


def make_member(*, display_name=None, email=None, password=PASSWORD, verified=True, **extra):
    n = next(_counter)
    return create_member(
        email=email or f"member{n}@example.test",
        password=password,
        display_name=display_name or f"Member {n}",
        verified=verified,
        **extra,
    )


def make_moderator(**extra):
    extra.setdefault("display_name", f"Moderator {next(_counter)}")
    return make_member(is_staff=True, **extra)


def make_group(*, name=None, created_by=None, **extra):
    """A group with its first agreement version recorded, as create_group makes it."""
    from groups.models import AgreementVersion, Group

    n = next(_counter)
    name = name or f"Circle {n}"
    extra.setdefault("slug", f"circle-{n}")
    extra.setdefault("topic", "relational")
    extra.setdefault("description", "A small, steady circle.")
    extra.setdefault("agreement", "We listen without fixing. What is shared here stays here.")
    group = Group.objects.create(name=name, created_by=created_by, **extra)
    AgreementVersion.objects.create(
        group=group, version=group.agreement_version, text=group.agreement
    )
    return group


def make_membership(group, user, *, role="member", **extra):
    """An active membership that accepted the group's current agreement."""
    from django.utils import timezone

    from groups.models import Membership

    extra.setdefault("agreement_version", group.agreement_version)
    extra.setdefault("agreement_accepted_at", timezone.now())
    return Membership.objects.create(group=group, user=user, role=role, **extra)
