"""Domain events other apps (notifications, moderation) listen to.

Services send them inside their transaction via ``transaction.on_commit`` so a listener never
sees an event for a change that was rolled back. Each passes plain ids as keyword arguments.
"""

from django.dispatch import Signal

# occurrence_id, change ("moved" | "cancelled"), actor_id
occurrence_changed = Signal()
# entry_id, group_id, user_id, expires_at
seat_offered = Signal()
# request_id, group_id, user_id, approved (bool), note
join_request_decided = Signal()
# group_id, version
agreement_changed = Signal()
