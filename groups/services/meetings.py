"""Meetings: scheduling, recurrence, moving and cancelling occurrences, RSVPs, calendar feeds."""

__all__: list[str] = []
