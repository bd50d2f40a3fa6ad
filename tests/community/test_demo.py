"""The demo community `make run` loads: people, groups with meetings, and safe to load twice."""

import pytest
from django.core.management import CommandError, call_command

from community.models import User
from groups.models import Group, JoinRequest, Membership, Occurrence

pytestmark = pytest.mark.django_db


def test_the_demo_has_groups_with_facilitators_members_and_meetings_and_loads_twice_safely(
    settings,
):
    settings.DEBUG = True  # the command refuses to run in production
    call_command("load_demo")
    call_command("load_demo")

    assert User.objects.filter(email__endswith="@demo.invalid").count() == 5
    groups = {g.slug: g for g in Group.objects.all()}
    assert set(groups) == {"evening-circle", "gentle-mornings", "after-the-storm"}
    assert {g.join_policy for g in groups.values()} == {"open", "approval", "invite"}
    for group in groups.values():
        assert Membership.objects.get(group=group, role="facilitator").user.display_name == "Maple"
        assert Occurrence.objects.filter(meeting__group=group).count() == 8
    assert Membership.objects.filter(group=groups["evening-circle"], status="active").count() == 4
    waiting = JoinRequest.objects.get(group=groups["gentle-mornings"], status="pending")
    assert waiting.user.display_name == "Sol"


def test_the_demo_refuses_to_load_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("load_demo")
    assert not User.objects.exists()
