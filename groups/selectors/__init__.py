"""Reads about groups that check permission (Zulip's ``access_*`` pattern).

Split by topic: ``membership`` (who may see and do what), ``meetings`` (schedules, RSVPs).
"""

from groups.selectors.boundaries import *  # noqa: F403
from groups.selectors.chat import *  # noqa: F403
from groups.selectors.checkins import *  # noqa: F403
from groups.selectors.connections import *  # noqa: F403
from groups.selectors.meetings import *  # noqa: F403
from groups.selectors.membership import *  # noqa: F403 -- the package's public face
from groups.selectors.people import *  # noqa: F403
from groups.selectors.room import *  # noqa: F403
from groups.selectors.rounds import *  # noqa: F403
