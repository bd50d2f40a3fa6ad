"""Writes of the community app: plain ``verb_noun`` functions with an explicit actor.

Split by topic: ``members`` (accounts, profiles), ``notifications`` (the one ``notify`` every app
uses, reading, email), ``bulk_notifications`` (the same for many members at once),
``preferences`` (per-kind channels, reminder lead times, quiet hours), ``data`` (a member's
export of their data, and erasing their account), ``sessions`` (ending one of one's signed-in
sessions) and ``retention`` (purging old IP addresses).
"""

from community.services.bulk_notifications import *  # noqa: F403
from community.services.data import *  # noqa: F403
from community.services.members import *  # noqa: F403
from community.services.notifications import *  # noqa: F403
from community.services.preferences import *  # noqa: F403
from community.services.retention import *  # noqa: F403 -- the package's public face
from community.services.sessions import *  # noqa: F403 -- the package's public face
