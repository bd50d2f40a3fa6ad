"""Writes for the practice companion: ``verb_noun(obj, *, actor=...)`` functions.

``spaces`` (opening and clearing a practice space), ``replies`` (the companion answering),
``sharing`` (posting a rehearsed share to a circle).
"""

from companion.services.replies import *  # noqa: F403 -- the package's public face
from companion.services.sharing import *  # noqa: F403
from companion.services.spaces import *  # noqa: F403
