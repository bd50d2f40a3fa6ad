"""What the room socket's pieces share: running ORM work, telling a gone client apart."""

from __future__ import annotations

from channels.db import database_sync_to_async


def _db(function):
    """Run ``function`` (ORM work) in the database thread, with Django's connection handling.

    Thread-sensitive, as Channels' default: all of a process's database work runs in one
    thread, in order. Measured against a thread pool (bench/): the pool cost more CPU per
    message (the GIL changing hands) and gained no throughput on two cores.
    """
    return database_sync_to_async(function)


def _gone(error: Exception) -> bool:
    """Did sending fail because the client already went away (uvicorn's ``ClientDisconnected``)?
    Then there is nobody to tell and nothing to log: its disconnect event follows."""
    return type(error).__name__ == "ClientDisconnected"
