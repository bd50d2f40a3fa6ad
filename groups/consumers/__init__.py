"""The chat room socket, ``/ws/groups/<slug>/`` (``chat.ChatConsumer``), with the two pieces
each server process shares among its room sockets: ``hub.RoomHub`` (one subscription per room)
and ``watch.RoomWatch`` (the periodic check). Protocol: docs/protocol.md."""

from groups.consumers.chat import ChatConsumer

__all__ = ["ChatConsumer"]
