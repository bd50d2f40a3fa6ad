"""The chat room socket, ``/ws/groups/<slug>/``: a thin adapter over groups.services/selectors.

Protocol: docs/protocol.md. This module never touches the ORM itself; every read and write goes
through a selector or service in a thread (``database_sync_to_async``).

Delivery per socket is ordered and gap-free on the server side too: the consumer remembers the
highest ``seq`` it delivered, drops live messages it already sent, and fills any gap from the
database before sending a newer one. Two broadcasts often cross on their way (each server
process publishes its own senders' messages), so a message that arrives just ahead of its turn
waits up to ``REORDER_WAIT_SECONDS`` for the one before it before the gap is read from the
database. Changes to stored messages (edits, deletions, hides, reactions) are numbered per group
by ``rev`` and handled the same way. A periodic check (every ``watch.TICK_SECONDS``)
re-authorises the socket and catches up on broadcasts the channel layer dropped, so a lost
broadcast costs at most a tick of latency even if nothing else follows it. The check is batched: each server process
re-checks all its room sockets together (``RoomWatch``), in a few queries however many there
are, so idle sockets cost next to nothing.

Re-authorisation: a membership saved through a service (leave, removal, ban) sends
``membership.changed`` to the member's user group and the socket re-checks at once; anything
else (a raw update, a deactivated account, a session deleted elsewhere) is caught by the
periodic check within ``watch.TICK_SECONDS``. Every frame that reads or writes the room is
authorised again by the selector or service it reaches. So there is no per-frame query beyond the one the
frame's own work needs, and a removed member is out within seconds, never minutes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import datetime

import orjson
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.realtime import room_group, session_channel_group, user_channel_group
from community.socket_auth import LeanAsgiMixin
from groups import selectors, services
from groups.consumers.common import _db, _db_in_turn, _gone
from groups.consumers.hub import RoomHub
from groups.consumers.watch import RoomWatch

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
# How long a socket that the periodic check found behind the database waits for the broadcasts
# on their way before it reads what is still missing.
CATCH_UP_GRACE_SECONDS = 0.5
# How long a live message that arrived ahead of its turn waits for the one before it (crossing
# broadcasts from two server processes) before the gap is read from the database.
REORDER_WAIT_SECONDS = 1.5

RETRY_AFTER_SECONDS = 3
# Where a broadcast event keeps its encoded frames while the process's sockets deliver it
# (``ChatConsumer._frame_text``); the hub hands every socket the same event.
FRAMES_KEY = "frames"

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009


def _loads(text: str):
    """Parse a client frame: orjson, or the standard library for what orjson refuses but JSON
    allows (lone surrogates, integers past 64 bits), so those get the precise error code."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _dumps(frame: dict) -> str:
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # not a type orjson knows (a lazy translation string, say)
        return json.dumps(frame, ensure_ascii=False, default=str)


def _open_room(slug: str, user):
    """Everything a socket needs when it opens, in one unit of work: the member's active
    membership (or a refusal), the room's position, their boundaries, mutes and blockers."""
    membership = selectors.access_room(slug, user)
    position = selectors.latest_position(membership.group)
    soften = selectors.content_boundaries(user)
    muted, blocked_by = selectors.mutes_and_blockers(user.pk)
    return membership, position, soften, muted, blocked_by


# What most members have of mutes, blockers and softened topics: nothing. One shared empty set
# instead of three new ones per socket (each 216 bytes, and re-made by every periodic check).
NOTHING: frozenset = frozenset()


def _kept(values: frozenset) -> frozenset:
    """``values`` to keep on a socket: the shared ``NOTHING`` if empty."""
    return values or NOTHING


def _number(value) -> bool:
    """A non-negative integer from JSON (true/false are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _echo(client_id):
    """The client_id to name in a reply: only a short string that can travel as text."""
    if isinstance(client_id, str) and len(client_id) <= 100:
        try:
            client_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return client_id
    return None


async def _after(previous: asyncio.Task | None, handler, event: dict) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # its outcome is its own; only its end matters here
    await handler(event)


class ChatConsumer(LeanAsgiMixin, AsyncWebsocketConsumer):
    membership = None
    delivered: int = 0  # the highest seq this socket delivered (or knows the client has)
    delivered_rev: int = 0  # the highest change rev likewise
    round_mark: tuple[int, int] = (0, 0)  # the newest (round id, version) delivered
    _owed: tuple[int, int] = (0, 0)  # (seq, rev) the periodic check saw; caught up if not live
    watch: RoomWatch | None = None
    hub: RoomHub | None = None
    # The last event handed to this socket in a task and not handled yet (``post``).
    mailbox: asyncio.Task | None = None
    watch_slice = 0  # which of the watch's slices checks this socket
    closing = False
    soften: frozenset[str] = NOTHING  # the member's content boundaries (topics to fold)
    away = False  # this socket stepped away ("taking a break"); presence refreshes keep it
    # Whom the member muted or blocked (their messages fold) and who blocked them (left out of
    # presence). Ids, for this consumer only; re-read on ``people.changed`` and every check.
    muted: frozenset[int] = NOTHING
    blocked_by: frozenset[int] = NOTHING
    present: list[dict] | None = None  # the room's last presence broadcast, with user ids
    session_key: str | None = None
    # Live broadcasts that arrived ahead of their turn, by mark ("delivered" for seq,
    # "delivered_rev" for rev): number -> (payload, frame type, the broadcast's frames); and the
    # timers that read what is still missing. Made at the first one: most sockets never see one.
    _ahead: dict[str, dict[int, tuple[dict, str, dict]]] | None = None
    _gap_timers: dict[str, asyncio.TimerHandle] | None = None

    # --- Connection ---------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        """Serve the socket: its frames, one at a time, until it closes.

        Channels' own ``__call__`` gives every consumer a channel of its own on the layer (with
        the pub/sub layer a Redis subscription, a queue and a task waiting on it) and waits for
        that channel and the client together, a task per frame. A room socket hears the layer
        only through its process's hub (``RoomHub``), so it has no channel: frames are read and
        handled in turn, and the socket costs a few objects of its own while idle (scenario
        (c) in bench/, docs/performance.md).
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        # Names this connection in the room's presence (several tabs are several connections).
        self.connection_id = f"room.{secrets.token_hex(12)}"
        self.base_send = send
        try:
            message = await receive()
            while True:
                # The next frame is read while this one is handled. uvicorn stops reading a
                # socket from the moment it holds a frame the app hasn't taken, keepalive pongs
                # included, so a frame that waits long (a resume queued behind a reconnect
                # storm's database work on a slow machine) got its socket closed with 1011
                # ("keepalive ping timeout") after 20 s (bench/ (d), docs/performance.md).
                ahead = asyncio.ensure_future(receive())
                try:
                    await self.dispatch(message)
                except BaseException:
                    ahead.cancel()
                    raise
                if ahead.done():
                    message = ahead.result()
                else:
                    # Nothing is lost: a cancelled wait on uvicorn's queue (asyncio.Queue.get)
                    # takes nothing from it. An idle socket then waits without a task.
                    ahead.cancel()
                    message = await receive()
        except StopConsumer:
            pass

    async def dispatch(self, message):
        """Run the handler for ``message`` (a client frame or a channel layer event).

        Channels' own ``dispatch`` first closes stale database connections, through a hop into
        the database thread, for every event: twelve hops per chat message in a room of twelve,
        each queued behind other sockets' queries (bench/, docs/performance.md). This consumer
        never touches the database outside ``database_sync_to_async``, which does the same
        before and after each call, so the hop is left out.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self._lock = asyncio.Lock()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        try:
            membership, position, soften, muted, blocked_by = await _db(_open_room)(slug, user)
        except DomainError:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.membership = membership
        self.soften, self.muted, self.blocked_by = _kept(soften), _kept(muted), _kept(blocked_by)
        self.delivered, self.delivered_rev = position.seq, position.rev
        self.user = membership.user
        hub = RoomHub.of_running_loop(self.channel_layer)
        # One instance of the group for the process's sockets in this room (``RoomHub.room``).
        membership.group = hub.room(membership.group)
        self.group = membership.group
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        await self.accept()
        # Through the process's hub: one channel for all its room sockets' groups. Only once
        # accepted: the hub hands events over at any time, not after connect() as Channels'
        # own dispatch does. What is broadcast before the join, the client's resume brings.
        self.hub = hub
        await self.hub.join(self, self._channel_groups())
        # Announced with whoever else arrives or leaves in the next moment: one presence
        # broadcast for a burst of reconnections, not one each.
        await sync_to_async(services.enter_room, thread_sensitive=False)(
            self.membership, connection_id=self.connection_id, announce=False
        )
        self.hub.announce_presence_soon(self.group.pk)
        self.watch = RoomWatch.of_running_loop()
        self.watch.add(self)

    async def disconnect(self, code):
        self.closing = True
        if self.watch is not None:
            self.watch.discard(self)
        for timer in (self._gap_timers or {}).values():
            timer.cancel()
        if self.hub is not None:
            await self.hub.leave(self, self._channel_groups())
        if self.membership is not None:
            # With the others who come and go meanwhile, through the hub (see connect()).
            await sync_to_async(services.leave_room, thread_sensitive=False)(
                self.group.pk, connection_id=self.connection_id, announce=self.hub is None
            )
            if self.hub is not None:
                self.hub.announce_presence_soon(self.group.pk)

    def _channel_groups(self) -> list[str]:
        """The channel groups this socket hears (through the hub): its room's, its member's and
        its session's. Named when needed rather than kept: a socket lives long."""
        names = [room_group(self.group.pk), user_channel_group(self.user.pk)]
        if self.session_key:
            names.append(session_channel_group(self.session_key))
        return names

    def _timers(self) -> dict[str, asyncio.TimerHandle]:
        if self._gap_timers is None:
            self._gap_timers = {}
        return self._gap_timers

    def busy(self) -> bool:
        """Is a frame, catch-up or check holding this socket (its lock)? Then an event waits
        its turn in the mailbox (``RoomHub.deliver``)."""
        return self._lock.locked()

    def post(self, handler, event: dict) -> None:
        """Handle ``event`` once everything handed to this socket before it is handled."""
        task = asyncio.get_running_loop().create_task(_after(self.mailbox, handler, event))
        self.mailbox = task
        task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task) -> None:
        if self.mailbox is task:
            self.mailbox = None
        error = None if task.cancelled() else task.exception()
        if error is not None and not self._stop_if_gone(error):
            logger.warning("A room socket's event failed.", exc_info=error)

    def _stop_if_gone(self, error: Exception) -> bool:
        """If ``error`` says the client already went away, stop sending to this socket (its
        disconnect is on its way; nothing to log) and say so."""
        if _gone(error):
            self.closing = True
            return True
        return False

    async def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)

    # --- Frames from the client ---------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        raw = bytes_data if bytes_data is not None else (text_data or "").encode()
        if len(raw) > MAX_FRAME_BYTES:
            await self._close(CLOSE_TOO_BIG)
            return
        if self.membership is None or self.closing:
            return
        if bytes_data is not None:
            await self._error("bad_frame", _("The room only understands text frames."))
            return
        try:
            frame = _loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            frame = None
        if not isinstance(frame, dict):
            await self._error("bad_json", _("That frame wasn't valid JSON. Nothing changed."))
            return
        frame_type = frame.get("type")
        handler = self.FRAME_HANDLERS.get(frame_type) if isinstance(frame_type, str) else None
        if handler is None:
            await self._error("unknown_type", _("The room doesn't know that kind of frame."))
            return
        client_id = _echo(frame.get("client_id"))
        async with self._lock:
            try:
                await handler(self, frame)
            except DomainError as error:
                if isinstance(error, PermissionDenied) and error.code == "not_member":
                    await self._close(CLOSE_FORBIDDEN)
                    return
                await self._error(error.code, error.message, client_id=client_id, **error.details)
            except Exception as error:
                if self._stop_if_gone(error):
                    return  # the client left before its answer; nothing to say
                # The database is unreachable, say. Nothing was stored or acked, so the client
                # keeps the frame and retries it with the same client_id.
                logger.exception("Chat frame %r failed.", frame.get("type"))
                await self._error(
                    "unavailable",
                    _(
                        "We couldn't reach the room just now. We'll keep trying; nothing you wrote is lost."
                    ),
                    client_id=client_id,
                    retry_after=RETRY_AFTER_SECONDS,
                )

    async def frame_send(self, frame):
        result = await _db_in_turn(services.post_message)(
            self.group,
            author=self.user,
            client_id=frame.get("client_id"),
            body=frame.get("body"),
            content_warning=frame.get("content_warning") or "",
            # Words on a sensitive topic without a content note get a gentle suggestion first;
            # "topics_ok": true sends them as they are.
            suggest_note=frame.get("topics_ok") is not True,
        )
        await self._ack(frame, result)

    async def frame_wave(self, frame):
        result = await _db_in_turn(services.send_wave)(
            self.group, user=self.user, client_id=frame.get("client_id")
        )
        await self._ack(frame, result)

    async def _ack(self, frame, result) -> None:
        # The client's own spelling of its client_id (it keys its outbox by it); the service
        # checked that it names the stored message.
        client_id = _echo(frame.get("client_id")) or str(result.message.client_id)
        await self._send_json({"type": "ack", "client_id": client_id, "seq": result.message.seq})

    async def frame_resume(self, frame):
        after, since = frame.get("after"), frame.get("since")
        if not _number(after) or not (since is None or _number(since)):
            await self._error(
                "bad_frame",
                _(
                    "A resume needs the last seq you saw (0 for none), and optionally the last "
                    "rev you saw."
                ),
            )
            return
        position = await self._send_missed(after=after, since=since)
        self.delivered = max(self.delivered, position.seq)
        self.delivered_rev = max(self.delivered_rev, position.rev)
        await self._send_json({"type": "resumed", "latest": position.seq, "rev": position.rev})
        # The round lives in the database: a reconnecting client (or one whose server process
        # restarted) learns its current state here.
        await self._send_round()

    async def frame_react(self, frame):
        await _db(services.toggle_reaction)(
            self.group, user=self.user, seq=frame.get("seq"), reaction=frame.get("reaction")
        )

    async def frame_delete(self, frame):
        await _db(services.delete_message)(self.group, actor=self.user, seq=frame.get("seq"))

    async def frame_edit(self, frame):
        await _db(services.edit_message)(
            self.group, author=self.user, seq=frame.get("seq"), body=frame.get("body")
        )

    async def frame_read(self, frame):
        await _db(services.mark_read)(self.group, user=self.user, seq=frame.get("seq"))

    async def frame_presence(self, frame):
        hidden = frame.get("hidden")
        if not isinstance(hidden, bool):
            await self._error("bad_frame", _("Say whether to hide your presence (true or false)."))
            return
        self.membership = await _db(services.set_presence_hidden)(
            self.group, user=self.user, hidden=hidden
        )
        await sync_to_async(services.refresh_presence, thread_sensitive=False)(
            self.membership, connection_id=self.connection_id, announce=True, away=self.away
        )

    async def frame_away(self, frame):
        """Step away ("taking a break") or come back: only presence changes, nothing is kept."""
        away = frame.get("away")
        if not isinstance(away, bool):
            await self._error(
                "bad_frame", _("Say whether you're stepping away (true) or back (false).")
            )
            return
        self.away = away
        await sync_to_async(services.set_away, thread_sensitive=False)(
            self.membership, connection_id=self.connection_id, away=away
        )

    async def frame_help(self, frame):
        """ "I need help now": the crisis path without a message (moderation.services)."""
        from moderation.services import request_help

        await _db(request_help)(self.group, user=self.user)

    # --- Go-around rounds (groups.services.rounds) --------------------------------------------

    async def _round_call(self, service, **kwargs):
        """Run a round service; its refusals carry ``about: "round"`` so the round panel, not
        the message box, shows them."""
        try:
            return await _db(service)(self.group, **kwargs)
        except DomainError as error:
            error.details.setdefault("about", "round")
            raise

    async def frame_round_start(self, frame):
        await self._round_call(
            services.start_round,
            actor=self.user,
            prompt=frame.get("prompt"),
            order=frame.get("order"),
        )

    async def frame_round_candidates(self, frame):
        people = await self._round_call(selectors.round_candidates, viewer=self.user)
        await self._send_json({"type": "round_candidates", "people": people})

    async def frame_round_share(self, frame):
        result = await self._round_call(
            services.share_turn,
            user=self.user,
            client_id=frame.get("client_id"),
            body=frame.get("body"),
            content_warning=frame.get("content_warning") or "",
            round_id=frame.get("round"),
        )
        await self._ack(frame, result)

    async def frame_round_pass(self, frame):
        await self._round_call(services.pass_turn, user=self.user, round_id=frame.get("round"))

    async def frame_round_skip(self, frame):
        await self._round_call(
            services.skip_turn,
            actor=self.user,
            round_id=frame.get("round"),
            position=frame.get("position"),
        )

    async def frame_round_end(self, frame):
        await self._round_call(services.end_round, actor=self.user, round_id=frame.get("round"))

    async def _send_round(self) -> None:
        """The room's round from the database (after a resume, or when a check finds a newer
        version than this socket delivered). Nothing is sent when the room has no round to show
        (the page tells facilitators they may start one)."""
        payload = await _db(selectors.room_round)(self.membership.pk)
        if payload["id"] is None:
            return
        self.round_mark = max(self.round_mark, (payload["id"], payload["version"]))
        await self._send_round_frame(payload)

    async def _send_round_frame(self, payload: dict) -> None:
        frame = selectors.round_for_viewer(payload, viewer_id=self.user.pk)
        await self._send_json({"type": "round", **frame})

    FRAME_HANDLERS = {
        "send": frame_send,
        "wave": frame_wave,
        "resume": frame_resume,
        "react": frame_react,
        "delete": frame_delete,
        "edit": frame_edit,
        "read": frame_read,
        "presence": frame_presence,
        "away": frame_away,
        "help": frame_help,
        "round_start": frame_round_start,
        "round_candidates": frame_round_candidates,
        "round_share": frame_round_share,
        "round_pass": frame_round_pass,
        "round_skip": frame_round_skip,
        "round_end": frame_round_end,
    }

    # --- Delivery -----------------------------------------------------------------------------

    async def _send_json(self, frame: dict) -> None:
        await self.send(text_data=_dumps(frame))

    async def _error(self, code: str, message: str, *, client_id=None, **details) -> None:
        frame = {"type": "error", "code": code, "message": message, **details}
        if client_id is not None:
            frame["client_id"] = client_id
        await self._send_json(frame)

    async def _send_missed(self, *, after: int, since: int | None) -> selectors.RoomPosition:
        """Bring the client up to date from the database, in batches: every visible message
        after seq ``after`` (as ``message``), then the current state of every older message that
        changed after rev ``since`` (as ``update``; skipped when ``since`` is None).

        Returns the room's position read first; anything newer arrives live. The position and
        the first batches come in one unit of work (``room_catch_up``).
        """
        position, messages, changes = await _db(selectors.room_catch_up)(
            self.membership.pk, after=after, since=since
        )
        while True:
            for payload in messages:
                await self._send_json(self._frame(payload))
            if len(messages) < selectors.RESUME_BATCH_SIZE:
                break
            messages = await _db(selectors.room_backlog)(
                self.membership.pk, after=messages[-1]["seq"], up_to=position.seq
            )
        while True:
            for payload in changes:
                await self._send_json(self._frame(payload, "update"))
            if len(changes) < selectors.RESUME_BATCH_SIZE:
                break
            changes = await _db(selectors.room_changes)(
                self.membership.pk, since=changes[-1]["rev"], up_to=position.rev, max_seq=after
            )
        return position

    def _frame(self, payload: dict, frame_type: str = "message") -> dict:
        return selectors.frame_for_viewer(
            payload,
            viewer_id=self.user.pk,
            frame_type=frame_type,
            soften=self.soften,
            muted=self.muted,
        )

    async def _catch_up(self) -> None:
        """Deliver from the database every message and change this socket hasn't delivered."""
        position = await self._send_missed(after=self.delivered, since=self.delivered_rev)
        self.delivered = max(self.delivered, position.seq)
        self.delivered_rev = max(self.delivered_rev, position.rev)
        # Whatever waited for its turn is either delivered now or still ahead: send the latter
        # in order (they are newer than the position read).
        for mark in list(self._ahead or ()):
            await self._flush_ahead(mark)

    def _may_see(self, payload: dict) -> bool:
        return datetime.fromisoformat(payload["created"]) >= self.membership.joined_at

    # --- Events from the channel layer --------------------------------------------------------

    async def chat_message(self, event):
        await self._live(
            event["message"],
            frame_type="message",
            number="seq",
            mark="delivered",
            frames=event.setdefault(FRAMES_KEY, {}),
        )

    async def chat_update(self, event):
        await self._live(
            event["message"],
            frame_type="update",
            number="rev",
            mark="delivered_rev",
            frames=event.setdefault(FRAMES_KEY, {}),
        )

    async def _live(
        self, payload: dict, *, frame_type: str, number: str, mark: str, frames: dict
    ) -> None:
        """Deliver a broadcast in order: new messages by ``seq``, changes by ``rev``.

        Already delivered (from the database or an earlier broadcast): dropped. Ahead of the
        next expected number: it waits (``REORDER_WAIT_SECONDS``) for the missing ones to
        arrive live, as they nearly always do, and then what's still missing is sent from the
        database first.
        """
        if self.membership is None or self.closing:
            return
        async with self._lock:
            try:
                n = payload[number]
                if n <= getattr(self, mark):
                    return
                if n > getattr(self, mark) + 1:
                    if self._ahead is None:
                        self._ahead = {}
                    self._ahead.setdefault(mark, {})[n] = (payload, frame_type, frames)
                    timers = self._timers()
                    if mark not in timers:
                        timers[mark] = asyncio.get_running_loop().call_later(
                            REORDER_WAIT_SECONDS, self._fill_gap_soon, mark
                        )
                    return
                await self._deliver(payload, frame_type, number, mark, frames)
                await self._flush_ahead(mark)
            except DomainError:
                await self._close(CLOSE_FORBIDDEN)
            except Exception as error:
                self._delivery_failed(error)

    def _delivery_failed(self, error: Exception) -> None:
        if self._stop_if_gone(error):
            return
        # The database hiccuped mid catch-up: the periodic check delivers it instead.
        logger.warning("Chat delivery failed; the next check catches up.", exc_info=True)

    async def _deliver(
        self, payload: dict, frame_type: str, number: str, mark: str, frames: dict
    ) -> None:
        if self._may_see(payload):
            await self.send(text_data=self._frame_text(payload, frame_type, frames))
        setattr(self, mark, payload[number])

    def _frame_text(self, payload: dict, frame_type: str, frames: dict) -> str:
        """A broadcast's frame for this reader, encoded. ``frames``: what this process's
        sockets already encoded of the same broadcast, by what the frame depends on of the
        reader (``selectors.frame_variant``): in a room of twelve usually two encodings, the
        author's and everyone else's, instead of twelve."""
        key = selectors.frame_variant(
            payload, viewer_id=self.user.pk, soften=self.soften, muted=self.muted
        )
        text = frames.get(key)
        if text is None:
            text = frames[key] = _dumps(self._frame(payload, frame_type))
        return text

    async def _flush_ahead(self, mark: str) -> None:
        """Send what waited and is now next in line; forget what was delivered meanwhile.
        Precondition: holding ``self._lock``."""
        ahead = self._ahead.get(mark) if self._ahead else None
        number = "seq" if mark == "delivered" else "rev"
        for n in sorted(ahead or ()):
            if n <= getattr(self, mark):
                del ahead[n]
            elif n == getattr(self, mark) + 1:
                payload, frame_type, frames = ahead.pop(n)
                await self._deliver(payload, frame_type, number, mark, frames)
            else:
                break
        # Read, not made: this runs for every delivered message.
        if not ahead and self._gap_timers and mark in self._gap_timers:
            self._gap_timers.pop(mark).cancel()

    def _settle_owed(self) -> None:
        self._timers().pop("owed", None)
        if not self.closing:
            asyncio.get_running_loop().create_task(self._fill_gap(owed=True))

    def _fill_gap_soon(self, mark: str) -> None:
        self._timers().pop(mark, None)
        if self._ahead and self._ahead.get(mark) and not self.closing:
            asyncio.get_running_loop().create_task(self._fill_gap())

    async def _fill_gap(self, *, owed: bool = False) -> None:
        """The missing numbers did not arrive live in time: read them from the database.

        ``owed``: the periodic check saw newer numbers in the database than this socket had
        delivered; nothing is read if they have arrived live meanwhile."""
        async with self._lock:
            if self.closing:
                return
            if owed:
                seq, rev = self._owed
                self._owed = (0, 0)
                if seq <= self.delivered and rev <= self.delivered_rev:
                    return
            try:
                await self._catch_up()
            except DomainError:
                await self._close(CLOSE_FORBIDDEN)
            except Exception as error:
                self._delivery_failed(error)

    async def chat_presence(self, event):
        if self.membership is None or self.closing:
            return
        self.present = event["present"]
        await self._send_presence()

    def _visible_presence(self) -> list[dict]:
        """The room's last presence broadcast as this member may see it: without anyone who
        blocked them (exactly as if those had hidden their presence), and without user ids."""
        return [
            {k: v for k, v in person.items() if k != "user_id"}
            for person in self.present or ()
            if person.get("user_id") not in self.blocked_by
        ]

    async def _send_presence(self) -> None:
        if self.present is None:
            return
        await self._send_json(
            {
                "type": "presence",
                "present": self._visible_presence(),
                "hidden": self.membership.hide_presence,
            }
        )

    async def _set_people(self, muted: frozenset[int], blocked_by: frozenset[int]) -> None:
        """Adopt re-read mutes and blockers. Presence is sent again only if what this member
        sees of it changed: a frame out of the blue, when nobody came or went, would itself
        hint that something happened. New messages fold the new way; those already shown stay
        as they are until they change or the page reloads."""
        before = self._visible_presence()
        self.muted, self.blocked_by = _kept(muted), _kept(blocked_by)
        if self.present is not None and self._visible_presence() != before:
            await self._send_presence()

    async def people_changed(self, event):
        """The member muted, blocked, unmuted or unblocked someone, or someone did so to them
        (the event says neither which nor who): re-read both."""
        if self.membership is None or self.closing:
            return
        try:
            muted, blocked_by = await _db(selectors.mutes_and_blockers)(self.user.pk)
        except Exception:
            logger.warning("Could not re-read mutes; the next check does.", exc_info=True)
            return
        async with self._lock:
            await self._set_people(muted, blocked_by)

    async def round_state(self, event):
        """A round changed: deliver it unless this socket already delivered that version (or a
        newer one) from the database."""
        if self.membership is None or self.closing:
            return
        payload = event["round"]
        async with self._lock:
            mark = (payload["id"], payload["version"])
            if mark <= self.round_mark:
                return
            self.round_mark = mark
            await self._send_round_frame(payload)

    async def boundaries_changed(self, event):
        """The member changed the topics they want softened: fold new messages the new way."""
        if self.membership is None or self.closing:
            return
        try:
            soften = await _db(selectors.content_boundaries)(self.user)
        except Exception:
            logger.warning("Could not re-read boundaries; the next check does.", exc_info=True)
            return
        async with self._lock:
            self.soften = _kept(soften)

    async def membership_changed(self, event):
        if self.membership is None or self.closing or event.get("group_id") != self.group.pk:
            return
        async with self._lock:
            try:
                await self._recheck()
            except DomainError:
                await self._close(CLOSE_FORBIDDEN)
            except Exception:
                logger.warning("Chat socket check failed; the next tick retries.", exc_info=True)

    async def chat_support(self, event):
        """Crisis support, privately: only this member's sockets in the room it came from."""
        if self.membership is None or self.closing or event.get("group_id") != self.group.pk:
            return
        await self._send_json(
            {"type": "support", "message": event["message"], "resources": event["resources"]}
        )

    async def session_ended(self, event):
        await self._close(CLOSE_UNAUTHENTICATED)

    # --- Periodic re-authorisation and catch-up ----------------------------------------------

    async def _recheck(self) -> bool:
        check = await _db(selectors.check_room_access)(
            self.membership.pk, session_key=self.session_key
        )
        return await self._apply_check(check)

    async def _on_check(self, check: selectors.RoomCheck) -> None:
        """This socket's answer from the process's periodic check (``RoomWatch``)."""
        if self.closing:
            return
        try:
            async with self._lock:
                if not self.closing:
                    await self._apply_check(check)
        except DomainError:
            await self._close(CLOSE_FORBIDDEN)
        except Exception:
            # The database or Redis hiccuped; the next tick tries again.
            logger.warning("Chat socket check failed; retrying.", exc_info=True)

    async def _apply_check(self, check: selectors.RoomCheck) -> bool:
        """Close the socket, or adopt what changed and catch up. Precondition: holding
        ``self._lock``."""
        if not check.active:
            await self._close(CLOSE_FORBIDDEN)
            return False
        if not check.session_ok:
            await self._close(CLOSE_UNAUTHENTICATED)
            return False
        changed = (check.listening, check.hide_presence) != (
            self.membership.listening,
            self.membership.hide_presence,
        )
        self.membership.listening = check.listening
        self.membership.hide_presence = check.hide_presence
        self.soften = _kept(check.soften_topics)
        if check.muted_ids is not None:
            await self._set_people(check.muted_ids, check.blocked_by_ids)
        if changed:
            await sync_to_async(services.refresh_presence, thread_sensitive=False)(
                self.membership, connection_id=self.connection_id, announce=True, away=self.away
            )
        if check.latest_seq > self.delivered or check.latest_rev > self.delivered_rev:
            # Usually the broadcast is on its way (committed just before the check read the
            # room, not yet arrived): give it a moment, then read whatever is still missing.
            self._owed = (
                max(self._owed[0], check.latest_seq),
                max(self._owed[1], check.latest_rev),
            )
            timers = self._timers()
            if "owed" not in timers:
                timers["owed"] = asyncio.get_running_loop().call_later(
                    CATCH_UP_GRACE_SECONDS, self._settle_owed
                )
        if (check.round_id, check.round_version) > self.round_mark:
            # A round broadcast this socket missed (Redis down, say): send it from the database.
            self.round_mark = (check.round_id, check.round_version)
            await self._send_round()
        return True
