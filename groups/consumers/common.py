"""What the room socket's pieces share: one of a kind per event loop (``PerLoop``), running ORM
work (one call at a time, or several sends in one turn of the database thread), telling a gone
client apart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar, Self

from channels.db import database_sync_to_async
from django.db import close_old_connections

from community.errors import DomainError


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


class PerLoop:
    """One instance per running event loop, shared by that loop's sockets: in a server process
    there is one loop, so one hub, one watch and one queue for the database thread's turns;
    each test's event loop gets fresh ones. Keyed by the loop's id, and checked against the loop
    itself, because a closed loop's id can be reused by the next.
    """

    _by_loop: ClassVar[dict[int, PerLoop]]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._by_loop = {}  # each kind its own registry

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @classmethod
    def of_running_loop(cls, *args) -> Self:
        """The running loop's instance, made with ``cls(loop, *args)`` if it has none yet (or
        one ``fits`` says is stale)."""
        loop = asyncio.get_running_loop()
        existing = cls._by_loop.get(id(loop))
        if existing is None or not existing.fits(loop, *args):
            existing = cls._by_loop[id(loop)] = cls(loop, *args)
        return existing

    def fits(self, loop: asyncio.AbstractEventLoop, *args) -> bool:
        return self.loop is loop

    def forget(self) -> None:
        """Leave the registry (nothing left to do): the next ``of_running_loop`` starts anew."""
        if self._by_loop.get(id(self.loop)) is self:
            del self._by_loop[id(self.loop)]


Call = tuple[Callable[..., Any], tuple, dict, asyncio.Future]


class DatabaseTurns(PerLoop):
    """Calls from this process's sockets that wait for the database thread together go to it
    together: one hop for up to ``MAX_CALLS`` of them, each still its own unit of work (its own
    transaction, its own result or error), in the order they came.

    Why: a hop costs the event loop and the database thread a handoff each way (each takes the
    GIL from the other), and under load sends queued for the thread faster than it took them;
    once a queue formed it stayed (docs/performance.md, "Round six"). In runs alternating with
    the code before, at 300 messages/s into 40 rooms of 12 (bench/): p99 from send to every
    member 46-78 ms in four runs of four with shared turns, and 42, 125, 668 and 765 ms with one
    hop per send, at the same CPU per message. At a person's pace every call is a turn of its
    own, exactly as ``_db`` runs it.

    Each call's result goes back to its caller as soon as that call is done, not when its turn
    ends. Callers' context variables are not carried into the thread per call (the turn runs in
    the first caller's): room sockets set none.
    """

    MAX_CALLS = 8

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.waiting: list[Call] = []
        self.task: asyncio.Task | None = None
        self.turns = 0  # hops taken; calls / turns is how many went together (tests)

    async def run(self, function: Callable[..., Any], /, *args, **kwargs) -> Any:
        """``function(*args, **kwargs)`` in the database thread, in turn with the others."""
        future = self.loop.create_future()
        self.waiting.append((function, args, kwargs, future))
        if self.task is None:
            self.task = self.loop.create_task(self._take_turns())
        return await future

    async def _take_turns(self) -> None:
        calls: list[Call] = []
        try:
            while self.waiting:
                calls = self.waiting[: self.MAX_CALLS]
                del self.waiting[: self.MAX_CALLS]
                # A caller that stopped waiting (its socket closed) has its call left out: the
                # client never heard back, so it sends again with the same client_id.
                calls = [call for call in calls if not call[-1].done()]
                if not calls:
                    continue
                self.turns += 1
                try:
                    await _db(_run_each)(self.loop, calls)
                except Exception as error:  # the hop itself failed (a connection check, say)
                    for *_call, future in calls:
                        _settle(future, False, error)
        except asyncio.CancelledError:
            # The loop is closing: nobody is left to answer the callers still waiting.
            for *_call, future in calls + self.waiting:
                future.cancel()
            self.waiting.clear()
            raise
        finally:
            self.task = None
            if not self.waiting:
                self.forget()


def _run_each(loop: asyncio.AbstractEventLoop, calls: list[Call]) -> None:
    """Run each call in the database thread and hand its result or error to its caller as soon
    as it is done (so a send is acked, and its sender's socket free for the next event, without
    waiting for the rest of the turn). One call's error is its own and stops no other.

    Precondition: in the database thread (``_db``), which closed unusable connections first.
    """
    for function, args, kwargs, future in calls:
        try:
            outcome = (True, function(*args, **kwargs))
        except Exception as error:
            outcome = (False, error)
            if not isinstance(error, DomainError):
                # As ``_db`` does between calls: a connection the error left unusable (the
                # database restarted, say) is closed, so the next call reconnects.
                close_old_connections()
        loop.call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.done():
        return  # its caller stopped waiting (the socket closed), or the turn already failed
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _db_in_turn(function):
    """``_db(function)``, but the call waits its turn with the process's other sockets' calls
    and goes to the database thread with them (``DatabaseTurns``). For the sends: the frame
    every member makes most, and the one the room waits for."""

    async def call(*args, **kwargs):
        return await DatabaseTurns.of_running_loop().run(function, *args, **kwargs)

    return call
