"""Writes about moderation: plain ``verb_noun`` functions with an explicit actor.

Split by topic: ``rules`` (flag rules), ``audit`` (the append-only log), ``queue`` (opening and
claiming items), ``reports`` (members' reports), ``screening`` (checking new messages, crisis
support, "I need help now", alerts and escalation) and ``actions`` (what moderators do).

``groups`` calls moderation only through ``screen_message``, ``request_help`` and
``open_item``.
"""

from moderation.services.actions import *  # noqa: F403
from moderation.services.audit import *  # noqa: F403
from moderation.services.digest import *  # noqa: F403
from moderation.services.queue import *  # noqa: F403
from moderation.services.reports import *  # noqa: F403
from moderation.services.rules import *  # noqa: F403
from moderation.services.screening import *  # noqa: F403 -- the package's public face
