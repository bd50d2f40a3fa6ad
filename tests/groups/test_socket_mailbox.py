"""A room socket's mailbox (events handed to it while it is busy): a client that has already
gone is not an error to log, anything else is."""

import asyncio
import logging

from uvicorn.protocols.utils import ClientDisconnected

from groups.consumers.chat import ChatConsumer


async def gone(_event):
    raise ClientDisconnected()


async def broken(_event):
    raise RuntimeError("the database hiccuped")


async def handled(socket):
    """Until the socket's mailbox task has ended and its done callback has run."""
    await asyncio.wait([socket.mailbox])
    await asyncio.sleep(0)


async def test_an_event_for_a_client_that_has_gone_stops_the_socket_quietly(caplog):
    socket = ChatConsumer()
    caplog.set_level(logging.WARNING, logger="groups.consumers.chat")

    socket.post(gone, {"type": "chat.presence"})
    await handled(socket)

    assert socket.closing is True
    assert socket.mailbox is None
    assert caplog.records == []


async def test_an_event_that_fails_otherwise_is_logged_and_the_socket_stays_open(caplog):
    socket = ChatConsumer()
    caplog.set_level(logging.WARNING, logger="groups.consumers.chat")

    socket.post(broken, {"type": "chat.presence"})
    await handled(socket)

    assert not socket.closing
    assert [r.getMessage() for r in caplog.records] == ["A room socket's event failed."]
    assert caplog.records[0].exc_info[0] is RuntimeError
