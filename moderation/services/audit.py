"""The append-only audit log: one row per moderator action and per view of an item's content.

Rows hold ids, the action's name, the moderator's reason and the result, never a message body,
a report's details, an appeal's words or health details.
"""

from __future__ import annotations

from moderation.models import AuditEntry

__all__ = ["record_audit"]


def record_audit(
    *,
    actor,
    action: str,
    target_type: str,
    target_id: int | None,
    group_id: int | None = None,
    reason: str = "",
    result: str = "ok",
) -> AuditEntry:
    """Append one row. Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        group_id=group_id,
        reason=reason or "",
        result=result,
    )
