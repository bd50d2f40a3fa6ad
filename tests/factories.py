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
