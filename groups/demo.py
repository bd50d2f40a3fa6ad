"""Demo groups with meetings for `make run` (called by community's load_demo). Safe to rerun."""

from community.models import User
from groups.models import Group, JoinPolicy, Topic
from groups.services.meetings import create_demo_meetings
from groups.services.membership import create_group, decide_join_request, join_group

AGREEMENT = """We keep what is shared here within the group.
We speak from our own experience and don't give advice unless asked.
Passing, listening and stepping away are always fine.
We can say "I feel distant right now" and be met kindly.
If something hurts, we say so gently, and we try to repair."""

DEMO_GROUPS = [
    # (slug, name, topic, description, policy, capacity, members by display name)
    (
        "evening-circle",
        "Evening circle",
        Topic.RELATIONAL,
        "A steady weekly circle for people recovering from relational trauma.",
        JoinPolicy.OPEN,
        12,
        ["Wren", "Sol", "Juniper"],
    ),
    (
        "gentle-mornings",
        "Gentle mornings",
        Topic.CONNECTION,
        "A quiet start to the week: check in, say hello, practise small connections.",
        JoinPolicy.APPROVAL,
        10,
        ["Sol", "Juniper"],
    ),
    (
        "after-the-storm",
        "After the storm",
        Topic.RELATIONSHIPS,
        "For people finding their feet after a hard relationship. By invitation.",
        JoinPolicy.INVITE,
        8,
        [],
    ),
]


def load_demo_groups() -> None:
    moderator = User.objects.filter(is_staff=True, email__endswith="@demo.invalid").first()
    facilitator = User.objects.filter(display_name="Maple").first()
    if moderator is None or facilitator is None:
        return
    for slug, name, topic, description, policy, capacity, members in DEMO_GROUPS:
        group = Group.objects.filter(slug=slug).first()
        if group is not None:
            continue
        group = create_group(
            actor=moderator,
            facilitator=facilitator,
            name=name,
            slug=slug,
            topic=topic,
            description=description,
            agreement=AGREEMENT,
            capacity=capacity,
            join_policy=policy,
        )
        for person in User.objects.filter(display_name__in=members).order_by("display_name"):
            outcome = join_group(group, user=person, agreement_version=group.agreement_version)
            # In the ask-to-join group Maple welcomes Juniper and leaves Sol's request waiting,
            # so a facilitator signing in has one to answer.
            if outcome.request is not None and person.display_name != "Sol":
                decide_join_request(outcome.request, actor=facilitator, approve=True)
        create_demo_meetings(group, actor=facilitator)
