"""Writes about groups: plain ``verb_noun`` functions with an explicit actor.

Split by topic: ``membership`` (groups, joining, leaving, waitlist, invites, agreements) and
``meetings`` (schedules, occurrences, RSVPs, calendar feeds), ``private_rooms`` (a pair's or
a practice space's room), ``chat``, ``rounds`` and others.
"""

from groups.services.boundaries import *  # noqa: F403
from groups.services.chat import *  # noqa: F403
from groups.services.checkins import *  # noqa: F403
from groups.services.connections import *  # noqa: F403
from groups.services.meetings import *  # noqa: F403
from groups.services.membership import *  # noqa: F403 -- the package's public face
from groups.services.people import *  # noqa: F403
from groups.services.presence import *  # noqa: F403
from groups.services.private_rooms import *  # noqa: F403
from groups.services.rounds import *  # noqa: F403
