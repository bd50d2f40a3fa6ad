"""Reads about a member's own data: what their export holds, and their signed-in sessions.

A package of its own (not ``community.selectors``, which other parts share) because every area
of the platform appears here once: ``sections`` (one function per area of an export),
``readable`` (an export as a page), ``exports`` (the member's exports and their signed links)
and ``sessions`` (signed-in sessions).
"""

from community.data_selectors.exports import *  # noqa: F403
from community.data_selectors.readable import *  # noqa: F403
from community.data_selectors.sections import *  # noqa: F403
from community.data_selectors.sessions import *  # noqa: F403 -- the package's public face
