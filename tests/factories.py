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


def next_local(weekday: int, hour: int, minute: int = 0, *, zone: str = "Europe/London", weeks=0):
    """The next ``weekday`` (0 = Monday) at ``hour:minute`` on the wall clock of ``zone``,
    at least a day from now, plus ``weeks`` weeks. Timezone-aware."""
    import zoneinfo
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    tz = zoneinfo.ZoneInfo(zone)
    day = timezone.now().astimezone(tz).date() + timedelta(days=1)
    day += timedelta(days=(weekday - day.weekday()) % 7, weeks=weeks)
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def make_meeting(group, *, actor, **options):
    """A meeting scheduled through the service (so its occurrences exist): by default a one-off
    60-minute meeting next Tuesday at 19:00 London time in the group's room."""
    from groups.services.meetings import schedule_meeting

    options.setdefault("title", "Tuesday circle")
    options.setdefault("starts_at", next_local(1, 19))
    options.setdefault("time_zone", "Europe/London")
    options.setdefault("duration_minutes", 60)
    return schedule_meeting(group, actor=actor, **options)


def make_session_key(user) -> str:
    """The session key of a fresh sign-in for ``user``, as a browser's cookie would hold it."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def make_invite(group, *, created_by=None, days=7, expired=False, revoked=False):
    """An invitation link to ``group``: by default good for ``days`` days from now; ``expired``
    makes one that ran out yesterday, ``revoked`` one a facilitator withdrew."""
    from datetime import timedelta

    from django.utils import timezone

    from groups.models import Invite

    now = timezone.now()
    created_at = now - timedelta(days=days + 1) if expired else now
    return Invite.objects.create(
        group=group,
        created_by=created_by,
        created_at=created_at,
        expires_at=created_at + timedelta(days=days),
        revoked_at=now if revoked else None,
    )


def fill_group(group, *, leave_free=0):
    """Add members until ``leave_free`` seats are left (existing members count). Returns them."""
    from groups.models import Membership

    taken = Membership.objects.filter(group=group, status="active").count()
    return [
        make_membership(group, make_member()).user
        for _ in range(group.capacity - taken - leave_free)
    ]


def install_seed_data():
    """What the data migrations install (crisis resources, default flag rules), again.

    A ``transaction=True`` test ends by emptying every table, migration data included, so a test
    that relies on that data after one must put it back.
    """
    import importlib

    from django.apps import apps
    from django.utils import timezone

    from moderation.default_rules import install_default_rules
    from moderation.matcher import bump_rules_version
    from moderation.models import FlagRule

    importlib.import_module("community.migrations.0002_default_crisis_resources").add_resources(
        apps, None
    )
    install_default_rules(FlagRule, now=timezone.now())
    bump_rules_version()


def seed_for_database_tests(request) -> None:
    """``install_seed_data`` for a test that uses the database (through the ``django_db`` mark
    or the ``db``/``transactional_db`` fixture), nothing for one that doesn't: the body of the
    autouse seed fixtures in the companion's and moderation's conftests."""
    if request.node.get_closest_marker("django_db") is None:
        for name in ("transactional_db", "db"):
            if name in request.fixturenames:
                request.getfixturevalue(name)
                break
        else:
            return
    install_seed_data()
