"""The companion hears about a member's message in their practice room.

The hook is Django's ``post_save`` of a new ``groups.Message``: it fires inside the storing
transaction (``groups.services.post_message``), and only registers ``reply_after_commit`` to
run once that transaction commits, so the member's message is stored and broadcast first and a
failing reply can't undo it. Only new text messages by an author in a practice room count.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from groups.models import Message, MessageKind
from groups.selectors.membership import in_practice_room


@receiver(post_save, sender=Message, dispatch_uid="companion_member_wrote")
def _member_wrote(sender, instance: Message, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw or instance.author_id is None or instance.kind != MessageKind.TEXT:
        return
    if not in_practice_room(instance):
        return
    from companion.services.replies import reply_after_commit

    room_id = instance.group_id
    transaction.on_commit(lambda: reply_after_commit(room_id), robust=True)
