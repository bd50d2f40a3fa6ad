"""Meetings, occurrences and RSVPs as members and facilitators see them."""

__all__: list[str] = []
