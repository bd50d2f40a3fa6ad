"""Capacity holds under concurrency: two people reaching for the last seat at the same moment
get one seat and one waitlist place.

Real threads with their own database connections, racing on PostgreSQL's row locks. SQLite has
no row locks (it locks the whole file and makes a second writer fail), so these run only on
PostgreSQL.
"""

import pytest
from django.db import connection

from groups import services
from groups.models import JoinRequest, Membership, WaitlistEntry
from tests.concurrency import race
from tests.factories import fill_group, make_group, make_member, make_membership

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="Needs PostgreSQL row locks (SELECT ... FOR UPDATE); set DATABASE_URL to run it.",
    ),
    pytest.mark.django_db(transaction=True),
]

RACES = 5


def test_two_people_joining_for_the_last_seat_give_one_member_and_one_waitlisted():
    for _ in range(RACES):
        circle = make_group(capacity=3)
        fill_group(circle, leave_free=1)
        ash, birch = make_member(), make_member()

        outcomes = race(
            *(
                lambda person=person, circle=circle: services.join_group(
                    circle, user=person, agreement_version=1
                )
                for person in (ash, birch)
            )
        )

        assert sorted(outcome.result for outcome in outcomes) == ["joined", "waitlisted"]
        racers = [ash.pk, birch.pk]
        assert (
            Membership.objects.filter(group=circle, user__in=racers, status="active").count() == 1
        )
        assert Membership.objects.filter(group=circle, status="active").count() == 3
        (waiting,) = WaitlistEntry.objects.filter(group=circle)
        assert waiting.status == "waiting"
        assert waiting.user_id in racers
        assert not Membership.objects.filter(group=circle, user=waiting.user).exists()


def test_two_facilitators_approving_requests_for_the_last_seat_give_one_member_and_one_waitlisted():
    for _ in range(RACES):
        circle = make_group(capacity=3, join_policy="approval")
        maple, alder = make_member(), make_member()
        make_membership(circle, maple, role="facilitator")
        make_membership(circle, alder, role="facilitator")
        ash, birch = make_member(), make_member()
        request_ids = [
            services.join_group(circle, user=person, agreement_version=1).request.pk
            for person in (ash, birch)
        ]

        outcomes = race(
            *(
                lambda actor=actor, pk=pk: services.decide_join_request(
                    JoinRequest.objects.get(pk=pk), actor=actor, approve=True
                )
                for actor, pk in zip((maple, alder), request_ids, strict=True)
            )
        )

        assert sorted(outcome.result for outcome in outcomes) == ["joined", "waitlisted"]
        assert set(
            JoinRequest.objects.filter(pk__in=request_ids).values_list("status", flat=True)
        ) == {"approved"}
        assert Membership.objects.filter(group=circle, status="active").count() == 3
        (waiting,) = WaitlistEntry.objects.filter(group=circle)
        assert waiting.status == "waiting"
        assert waiting.user_id in (ash.pk, birch.pk)
        assert not Membership.objects.filter(group=circle, user=waiting.user).exists()
