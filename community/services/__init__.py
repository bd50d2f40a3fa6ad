"""Writes of the community app: plain ``verb_noun`` functions with an explicit actor.

Split by topic: ``members`` (accounts, profiles), ``notifications`` (the one ``notify`` every app
uses, reading, email) and ``preferences`` (per-kind channels, reminder lead times, quiet hours).
"""

from community.services.members import *  # noqa: F403
from community.services.notifications import *  # noqa: F403
from community.services.preferences import *  # noqa: F403 -- the package's public face
