"""The chat room socket, ``/ws/groups/<slug>/``: a thin adapter over groups.services/selectors.

Protocol: docs/protocol.md. This module never touches the ORM itself; every read and write goes
through a selector or service in a thread (``database_sync_to_async``).

Delivery per socket is ordered and gap-free on the server side too: the consumer remembers the
highest ``seq`` it delivered, drops live messages it already sent, and fills any gap from the
database before sending a newer one. Changes to stored messages (edits, deletions, hides,
reactions) are numbered per group by ``rev`` and handled the same way. A periodic check (every
``TICK_SECONDS``) re-authorises the socket and catches up on broadcasts the channel layer
dropped, so a lost broadcast costs at most a tick of latency even if nothing else follows it.

Re-authorisation: a membership saved through a service (leave, removal, ban) sends
``membership.changed`` to the member's user group and the socket re-checks at once; anything
else (a raw update, a deactivated account, a session deleted elsewhere) is caught by the
periodic check within ``TICK_SECONDS``. Every frame that reads or writes the room is authorised
again by the selector or service it reaches. So there is no per-frame query beyond the one the
frame's own work needs, and a removed member is out within seconds, never minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.translation import gettext as _

from community.errors import DomainError, PermissionDenied
from community.realtime import room_group, session_channel_group, user_channel_group
from groups import selectors, services

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
TICK_SECONDS = 2.0
# Every this many ticks: refresh presence and re-join the channel groups. The pub/sub layer
# resubscribes by itself after a Redis restart; this covers a join that failed while Redis was
# down (and the core layer, which forgets group memberships on a restart).
REFRESH_EVERY_TICKS = 5

RETRY_AFTER_SECONDS = 3

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009


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


class ChatConsumer(AsyncWebsocketConsumer):
    membership = None
    delivered: int = 0  # the highest seq this socket delivered (or knows the client has)
    delivered_rev: int = 0  # the highest change rev likewise
    round_mark: tuple[int, int] = (0, 0)  # the newest (round id, version) delivered
    ticker: asyncio.Task | None = None
    closing = False
    soften: frozenset[str] = frozenset()  # the member's content boundaries (topics to fold)
    away = False  # this socket stepped away ("taking a break"); presence refreshes keep it
    # Whom the member muted or blocked (their messages fold) and who blocked them (left out of
    # presence). Ids, for this consumer only; re-read on ``people.changed`` and every check.
    muted: frozenset[int] = frozenset()
    blocked_by: frozenset[int] = frozenset()
    present: list[dict] | None = None  # the room's last presence broadcast, with user ids

    # --- Connection ---------------------------------------------------------------------------

    async def connect(self):
        self.channel_groups: list[str] = []
        self._lock = asyncio.Lock()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        try:
            membership = await database_sync_to_async(selectors.access_room)(slug, user)
            position = await database_sync_to_async(selectors.room_position)(membership.pk)
            self.soften = await database_sync_to_async(selectors.content_boundaries)(user)
            self.muted, self.blocked_by = await database_sync_to_async(
                selectors.mutes_and_blockers
            )(user.pk)
        except DomainError:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.membership = membership
        self.delivered, self.delivered_rev = position.seq, position.rev
        self.user = membership.user
        self.group = membership.group
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        self.channel_groups = [room_group(self.group.pk), user_channel_group(self.user.pk)]
        if self.session_key:
            self.channel_groups.append(session_channel_group(self.session_key))
        await self._join_channel_groups()
        await self.accept()
        await sync_to_async(services.enter_room, thread_sensitive=False)(
            self.membership, connection_id=self.channel_name
        )
        self.ticker = asyncio.create_task(self._tick_loop())

    async def disconnect(self, code):
        self.closing = True
        if self.ticker is not None and self.ticker is not asyncio.current_task():
            self.ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.ticker
        for name in self.channel_groups:
            try:
                await self.channel_layer.group_discard(name, self.channel_name)
            except Exception:
                logger.warning("Could not leave channel group %s (Redis down?).", name)
        if self.membership is not None:
            await sync_to_async(services.leave_room, thread_sensitive=False)(
                self.group.pk, connection_id=self.channel_name
            )

    async def _join_channel_groups(self) -> None:
        for name in self.channel_groups:
            try:
                await self.channel_layer.group_add(name, self.channel_name)
            except Exception:
                # Redis is down: the periodic refresh joins again once it is back, and the
                # database catch-up delivers what was missed meanwhile.
                logger.warning("Could not join channel group %s (Redis down?).", name)

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
            frame = json.loads(text_data)
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
            except Exception:
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
        result = await database_sync_to_async(services.post_message)(
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
        result = await database_sync_to_async(services.send_wave)(
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
        await database_sync_to_async(services.toggle_reaction)(
            self.group, user=self.user, seq=frame.get("seq"), reaction=frame.get("reaction")
        )

    async def frame_delete(self, frame):
        await database_sync_to_async(services.delete_message)(
            self.group, actor=self.user, seq=frame.get("seq")
        )

    async def frame_edit(self, frame):
        await database_sync_to_async(services.edit_message)(
            self.group, author=self.user, seq=frame.get("seq"), body=frame.get("body")
        )

    async def frame_read(self, frame):
        await database_sync_to_async(services.mark_read)(
            self.group, user=self.user, seq=frame.get("seq")
        )

    async def frame_presence(self, frame):
        hidden = frame.get("hidden")
        if not isinstance(hidden, bool):
            await self._error("bad_frame", _("Say whether to hide your presence (true or false)."))
            return
        self.membership = await database_sync_to_async(services.set_presence_hidden)(
            self.group, user=self.user, hidden=hidden
        )
        await sync_to_async(services.refresh_presence, thread_sensitive=False)(
            self.membership, connection_id=self.channel_name, announce=True, away=self.away
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
            self.membership, connection_id=self.channel_name, away=away
        )

    async def frame_help(self, frame):
        """ "I need help now": the crisis path without a message (moderation.services)."""
        from moderation.services import request_help

        await database_sync_to_async(request_help)(self.group, user=self.user)

    # --- Go-around rounds (groups.services.rounds) --------------------------------------------

    async def _round_call(self, service, **kwargs):
        """Run a round service; its refusals carry ``about: "round"`` so the round panel, not
        the message box, shows them."""
        try:
            return await database_sync_to_async(service)(self.group, **kwargs)
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
        payload = await database_sync_to_async(selectors.room_round)(self.membership.pk)
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
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def _error(self, code: str, message: str, *, client_id=None, **details) -> None:
        frame = {"type": "error", "code": code, "message": message, **details}
        if client_id is not None:
            frame["client_id"] = client_id
        await self._send_json(frame)

    async def _send_missed(self, *, after: int, since: int | None) -> selectors.RoomPosition:
        """Bring the client up to date from the database, in batches: every visible message
        after seq ``after`` (as ``message``), then the current state of every older message that
        changed after rev ``since`` (as ``update``; skipped when ``since`` is None).

        Returns the room's position read first; anything newer arrives live.
        """
        position = await database_sync_to_async(selectors.room_position)(self.membership.pk)
        cursor = after
        while cursor < position.seq:
            batch = await database_sync_to_async(selectors.room_backlog)(
                self.membership.pk, after=cursor, up_to=position.seq
            )
            for payload in batch:
                await self._send_json(self._frame(payload))
            if len(batch) < selectors.RESUME_BATCH_SIZE:
                break
            cursor = batch[-1]["seq"]
        cursor = position.rev if since is None else since
        while cursor < position.rev:
            batch = await database_sync_to_async(selectors.room_changes)(
                self.membership.pk, since=cursor, up_to=position.rev, max_seq=after
            )
            for payload in batch:
                await self._send_json(self._frame(payload, "update"))
            if len(batch) < selectors.RESUME_BATCH_SIZE:
                break
            cursor = batch[-1]["rev"]
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

    def _may_see(self, payload: dict) -> bool:
        return datetime.fromisoformat(payload["created"]) >= self.membership.joined_at

    # --- Events from the channel layer --------------------------------------------------------

    async def chat_message(self, event):
        await self._live(event["message"], frame_type="message", number="seq", mark="delivered")

    async def chat_update(self, event):
        await self._live(event["message"], frame_type="update", number="rev", mark="delivered_rev")

    async def _live(self, payload: dict, *, frame_type: str, number: str, mark: str) -> None:
        """Deliver a broadcast in order: new messages by ``seq``, changes by ``rev``.

        Already delivered (from the database or an earlier broadcast): dropped. Ahead of the
        next expected number: what's missing is sent from the database first.
        """
        if self.membership is None or self.closing:
            return
        async with self._lock:
            try:
                if payload[number] <= getattr(self, mark):
                    return
                if payload[number] > getattr(self, mark) + 1:
                    await self._catch_up()
                    if payload[number] <= getattr(self, mark):
                        return
                if self._may_see(payload):
                    await self._send_json(self._frame(payload, frame_type))
                setattr(self, mark, payload[number])
            except DomainError:
                await self._close(CLOSE_FORBIDDEN)
            except Exception:
                # The database hiccuped mid catch-up: the periodic check delivers it instead.
                logger.warning("Chat delivery failed; the next check catches up.", exc_info=True)

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
        self.muted, self.blocked_by = muted, blocked_by
        if self.present is not None and self._visible_presence() != before:
            await self._send_presence()

    async def people_changed(self, event):
        """The member muted, blocked, unmuted or unblocked someone, or someone did so to them
        (the event says neither which nor who): re-read both."""
        if self.membership is None or self.closing:
            return
        try:
            muted, blocked_by = await database_sync_to_async(selectors.mutes_and_blockers)(
                self.user.pk
            )
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
            soften = await database_sync_to_async(selectors.content_boundaries)(self.user)
        except Exception:
            logger.warning("Could not re-read boundaries; the next check does.", exc_info=True)
            return
        async with self._lock:
            self.soften = soften

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
        check = await database_sync_to_async(selectors.check_room_access)(
            self.membership.pk, session_key=self.session_key
        )
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
        self.soften = check.soften_topics
        await self._set_people(check.muted_ids, check.blocked_by_ids)
        if changed:
            await sync_to_async(services.refresh_presence, thread_sensitive=False)(
                self.membership, connection_id=self.channel_name, announce=True, away=self.away
            )
        if check.latest_seq > self.delivered or check.latest_rev > self.delivered_rev:
            await self._catch_up()
        if (check.round_id, check.round_version) > self.round_mark:
            # A round broadcast this socket missed (Redis down, say): send it from the database.
            self.round_mark = (check.round_id, check.round_version)
            await self._send_round()
        return True

    async def _tick_loop(self) -> None:
        ticks = 0
        while not self.closing:
            await asyncio.sleep(TICK_SECONDS)
            ticks += 1
            try:
                async with self._lock:
                    if self.closing or not await self._recheck():
                        return
                if ticks % REFRESH_EVERY_TICKS == 0:
                    await self._join_channel_groups()
                    await sync_to_async(services.refresh_presence, thread_sensitive=False)(
                        self.membership,
                        connection_id=self.channel_name,
                        announce=False,
                        away=self.away,
                    )
            except asyncio.CancelledError:
                raise
            except DomainError:
                await self._close(CLOSE_FORBIDDEN)
                return
            except Exception:
                # The database or Redis hiccuped; try again next tick rather than drop the socket.
                logger.warning("Chat socket check failed; retrying.", exc_info=True)
