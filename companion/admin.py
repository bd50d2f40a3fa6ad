"""The practice companion in the admin: deliberately nothing to browse.

A practice space is its member's alone; moderators see a practice message only through a crisis
item the member agreed to (docs/companion.md). So no model here is registered: not the spaces,
not the replies, not even a list of who has one. What the admin does show is whether the
generative backend is on: the ``companion_backend_status`` tag on the moderators' landing page
(``templates/admin/moderation_index.html``).
"""
