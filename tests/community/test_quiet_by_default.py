"""Quiet by default: what one member can load never shows another member's email, and the room
keeps no read receipts, no typing indicator and presence only among the group's members.

The page scan is generated, not a list of today's pages: it walks every URL pattern in the URL
conf, fills each path parameter from a synthetic community where everyone else has written,
reacted, answered, asked, reported and been notified, and GETs every page as a plain member and
as a facilitator (facilitators are members too; only staff in the Django admin may see emails).
Account pages are scanned too: one's own address is one's own to see, so what is looked for is
everyone else's. A new route whose parameters the walker can't fill fails the scan until it is
added to ``BY_NAME`` or ``BY_ROUTE`` below (or, if members can never load it, to ``SKIPPED``).

The frame scan does the same for the room's socket and the member's own socket (``/ws/me/``):
no emails, and no user ids either (frames name people by display name only).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import models
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from community.asgi import application
from community.models import Notification, NotificationKind, User
from community.services import unsubscribe_token
from groups import selectors, services
from groups.models import CheckIn, Membership
from moderation import services as moderation
from moderation.models import QueueItem
from tests.factories import (
    install_seed_data,
    make_group,
    make_meeting,
    make_member,
    make_membership,
    make_session_key,
)

# --- Whose details must not show ----------------------------------------------------------------

# Text fields of a member that other members may see, or that never reach a page. Every other
# text field of the member model (a real name, should one ever be added) is treated as private:
# the community below gives it a distinctive value and the scans look for it.
SHOWN_OR_SECRET_USER_FIELDS = {"display_name", "time_zone", "password"}


def private_user_fields() -> list[str]:
    return [
        field.name
        for field in User._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField)
        and field.name not in SHOWN_OR_SECRET_USER_FIELDS
    ]


def private_details(viewer) -> list[str]:
    """What must not show to ``viewer``: every other member's emails (all of their addresses,
    verified or not) and other private fields, lower-cased; for our synthetic addresses also
    the part before the @, which is distinctive enough to catch an address cut up or encoded."""
    values: set[str] = set()
    fields = private_user_fields()
    for row in User.objects.exclude(pk=viewer.pk).values(*fields):
        values.update(str(v) for v in row.values() if v)
    values.update(
        EmailAddress.objects.exclude(user=viewer).values_list("email", flat=True).iterator()
    )
    needles = {v.lower() for v in values}
    needles |= {v.split("@")[0] for v in needles if "@" in v and "-private-" in v}
    return sorted(needles)


def leaked(text: str, needles) -> list[str]:
    text = text.lower().replace("%40", "@")
    return [needle for needle in needles if needle in text]


# --- A small community where everyone else has been busy ---------------------------------------


def person(name: str, tag: str):
    """A member with a distinctive synthetic email and, should the model grow one, a
    distinctive value in every other private field."""
    user = make_member(display_name=name, email=f"{name.lower()}-private-{tag}@example.test")
    extra = {f: f"{name.lower()}-{f}-private-{tag}" for f in private_user_fields() if f != "email"}
    if extra:
        User.objects.filter(pk=user.pk).update(**extra)  # no service sets fields not yet there
    return user


def say(group, user, body, **extra):
    return services.post_message(
        group, author=user, client_id=uuid.uuid4(), body=body, **extra
    ).message


def build_community(group, facilitator, member, outsider, moderator):
    """The cast plus Rowan and Sorrel (members; Sorrel listens and hides her presence), Juniper
    and Bramble (who asked to join), in an ask-to-join "Evening circle", and a full "Lantern
    circle" nobody of the cast belongs to, with Juniper on its waitlist."""
    tag = secrets.token_hex(4)
    rowan, sorrel = person("Rowan", tag), person("Sorrel", tag)
    juniper, bramble = person("Juniper", tag), person("Bramble", tag)
    # A second, unverified address: a member's email list must never list anyone else's.
    EmailAddress.objects.create(user=rowan, email=f"rowan-second-private-{tag}@example.test")
    for user in (rowan, sorrel):
        make_membership(group, user)

    services.update_group(
        group,
        actor=facilitator,
        join_policy="approval",
        agreement="We listen without fixing. What is shared here stays here. We pass freely.",
    )
    for user in (facilitator, member, rowan, sorrel):
        services.accept_agreement(group, user=user, version=2)
    services.set_listening(group, user=sorrel, listening=True)
    services.set_presence_hidden(group, user=sorrel, hidden=True)

    join_request = services.join_group(
        group, user=juniper, agreement_version=2, message="I'd like to listen for a while."
    ).request
    declined = services.join_group(group, user=bramble, agreement_version=2).request
    services.decide_join_request(declined, actor=facilitator, approve=False, note="Not just now.")
    invite = services.create_invite(group, actor=facilitator)
    services.revoke_invite(services.create_invite(group, actor=facilitator), actor=facilitator)

    lantern = make_group(name="Lantern circle", capacity=2)
    make_membership(lantern, rowan, role="facilitator")
    make_membership(lantern, sorrel)
    services.join_group(lantern, user=juniper, agreement_version=1)  # full: the waitlist
    lantern_invite = services.create_invite(lantern, actor=rowan)
    say(lantern, rowan, "A quiet one tonight.")

    welcome = say(group, facilitator, "Welcome, everyone.", content_warning="family")
    thanks = say(group, rowan, "Thank you for having me.")
    services.edit_message(group, author=rowan, seq=thanks.seq, body="Thank you for having me here.")
    mine = say(group, member, "It was a long week.")
    taken_back = say(group, sorrel, "Let me take this back.")
    services.delete_message(group, actor=sorrel, seq=taken_back.seq)
    services.send_wave(group, user=rowan, client_id=uuid.uuid4())
    held = say(group, rowan, f"You can write to me at {rowan.email}")  # held for a moderator
    for user, message, reaction in [
        (rowan, welcome, "heart"),
        (sorrel, mine, "hear_you"),
        (facilitator, thanks, "strength"),
    ]:
        services.toggle_reaction(group, user=user, seq=message.seq, reaction=reaction)
    services.mark_read(group, user=rowan, seq=held.seq)
    for user, audience in [(rowan, "group"), (sorrel, "facilitators"), (member, "private")]:
        services.record_check_in(
            user, group=group, presence=3, feelings=["tired"], note="Slow day.", audience=audience
        )
    services.record_check_in(rowan, presence=4, feelings=["calm"], audience="private")

    meeting = make_meeting(group, actor=facilitator, recurrence="weekly", recurrence_count=4)
    sittings = list(meeting.occurrences.order_by("starts_at"))
    for user in (rowan, sorrel, member):
        services.rsvp(sittings[0], user=user, answer="going")
    services.cancel_occurrence(sittings[1], actor=facilitator)
    services.move_occurrence(
        sittings[2], actor=facilitator, starts_at=sittings[2].starts_at + timedelta(hours=1)
    )

    moderation.report_message(thanks, reporter=member, category="other", details="Just checking.")
    moderation.report_message(mine, reporter=rowan, category="harassment")
    item = QueueItem.objects.get(message=mine, kind="report")
    moderation.claim_item(item, moderator=moderator)
    action = moderation.warn_member(item, actor=moderator, reason="A gentle word about pacing.")
    moderation.submit_appeal(action, member=member, text="I hear you; it was a hard night.")
    moderation.request_help(group, user=sorrel)

    # Safe persons: Willow and Sorrel connected (with a room and a status), and invitations
    # still waiting, one of them to Willow.
    connection = services.accept_safe_person_invite(
        services.invite_safe_person(sorrel, invitee=member, note="Would you like to?").pk,
        user=member,
    )
    say(connection.room, sorrel, "Thank you for saying yes.")
    services.set_safe_status(sorrel, text="I feel distant right now", hours=4)
    waiting = [
        services.invite_safe_person(facilitator, invitee=member),
        services.invite_safe_person(rowan, invitee=sorrel),
    ]
    # Willow's practice space, where the companion names when people are around.
    from companion.services import open_practice_space

    say(open_practice_space(member, actor=member).room, member, "Who can I reach?")

    return SimpleNamespace(
        connection=connection,
        safe_invites=waiting,
        group=group,
        lantern=lantern,
        rowan=rowan,
        sorrel=sorrel,
        join_request=join_request,
        invite=invite,
        lantern_invite=lantern_invite,
        meeting=meeting,
        sitting=sittings[0],
        seqs=[thanks.seq, held.seq],
        latest_seq=selectors.latest_seq(group),
        action=action,
    )


# --- The walker ----------------------------------------------------------------------------------

# Route prefixes members never load, with the reason. Everything else is scanned.
SKIPPED = {
    # Staff (and facilitators with TOTP) moderate there; it may show what moderators need.
    "admin/": "the Django admin",
}

# Values for a path parameter that means the same on every route, by its name. Each is a
# function of the community (with ``c.viewer`` set) returning the values to try.
BY_NAME = {
    # A group the viewer belongs to, and one they don't.
    "slug": lambda c: [c.group.slug, c.lantern.slug],
    # Someone else's message, and one held for a moderator.
    "seq": lambda c: c.seqs,
}


def _meeting(c):
    return [{"slug": c.group.slug, "pk": c.meeting.pk}]


def _sitting(c):
    return [{"slug": c.group.slug, "pk": c.sitting.pk}]


def _own_and_others(c, model, **own):
    """One of the viewer's own rows and one of someone else's."""
    rows = model.objects.order_by("pk")
    return [rows.filter(**own).first(), rows.exclude(**own).first()]


def _export_tokens(c):
    from community.data_selectors import export_link_token
    from community.services import request_data_export

    exports = [request_data_export(user, actor=user) for user in (c.viewer, c.rowan)]
    return [{"token": export_link_token(export)} for export in exports]


def _session_ids(c):
    """A session of the viewer's and one of Rowan's (POST only: a GET changes nothing)."""
    from allauth.usersessions.models import UserSession

    return [
        UserSession.objects.create(
            user=user, session_key=make_session_key(user), ip="203.0.113.9", user_agent="Firefox/1"
        ).pk
        for user in (c.viewer, c.rowan)
    ]


# Parameters whose meaning depends on the route ("pk" is a meeting here, an invite there), by
# route name: a function of the community returning keyword sets (missing ones from BY_NAME).
BY_ROUTE = {
    "notification_read": lambda c: [
        {"pk": n.pk} for n in _own_and_others(c, Notification, user=c.viewer) if n
    ],
    "notification_unsubscribe": lambda c: [
        {"token": unsubscribe_token(user, NotificationKind.MEETING_CHANGED)}
        for user in (c.viewer, c.rowan)
    ],
    "account_confirm_email": lambda c: [
        {"key": EmailConfirmationHMAC(EmailAddress.objects.get_primary(c.viewer)).key},
        {"key": "not-a-key"},
    ],
    "account_reset_password_from_key": lambda c: [
        {
            "uidb36": user_pk_to_url_str(c.viewer),
            "key": default_token_generator.make_token(c.viewer),
        }
    ],
    "groups:decide_request": lambda c: [{"slug": c.group.slug, "pk": c.join_request.pk}],
    "groups:revoke_invite": lambda c: [{"slug": c.group.slug, "pk": c.invite.pk}],
    "groups:invite": lambda c: [{"token": c.invite.token}, {"token": c.lantern_invite.token}],
    "groups:meeting_detail": _meeting,
    "groups:meeting_edit": _meeting,
    "groups:meeting_cancel": _meeting,
    "groups:meeting_ics": _meeting,
    "groups:rsvp": _sitting,
    "groups:occurrence_cancel": _sitting,
    "groups:occurrence_move": _sitting,
    "groups:calendar_feed": lambda c: [
        {"token": services.calendar_feed_for(user).token} for user in (c.viewer, c.rowan)
    ],
    "moderation:appeal": lambda c: [{"pk": c.action.pk}],
    "groups:delete_check_in": lambda c: [
        {"pk": row.pk} for row in _own_and_others(c, CheckIn, user=c.viewer) if row
    ],
    # One's own data export (one's own address is in it) and someone else's link (refused).
    "groups:safe_person_accept": lambda c: [{"pk": i.pk} for i in c.safe_invites],
    "groups:safe_person_decline": lambda c: [{"pk": i.pk} for i in c.safe_invites],
    "groups:safe_person_withdraw": lambda c: [{"pk": i.pk} for i in c.safe_invites],
    "groups:safe_person_end": lambda c: [{"pk": c.connection.pk}],
    "groups:safe_person_room": lambda c: [{"slug": c.connection.room.slug}],
    "data_export_download": lambda c: _export_tokens(c),
    "data_export_view": lambda c: _export_tokens(c),
    "session_end": lambda c: [{"pk": pk} for pk in _session_ids(c)],
}

# Query strings some pages need to show anything, by route name.
QUERY = {
    "groups:room_history": lambda c: {"before": c.latest_seq + 1},
    "groups:directory": lambda c: {"q": "circle"},
}


@dataclass(frozen=True)
class Route:
    pattern: str
    name: str | None
    params: tuple[str, ...]


def all_routes(resolver=None, prefix="", namespace="", params=()):
    """Every URL pattern in the URL conf, with its full name and path parameters."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        pattern = prefix + str(entry.pattern)
        names = (*params, *entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from all_routes(entry, pattern, inner, names)
        else:
            yield Route(pattern, f"{namespace}{entry.name}" if entry.name else None, names)


def urls_for(route: Route, c, *, by_name=None, by_route=None) -> list[str]:
    """The URLs to GET for ``route``; raises LookupError saying what to add when it can't.

    ``by_name`` and ``by_route`` replace ``BY_NAME`` and ``BY_ROUTE`` for a scan that fills
    some parameters its own way (the access matrix asks about one group only)."""
    by_name = BY_NAME if by_name is None else by_name
    by_route = BY_ROUTE if by_route is None else by_route
    if route.name is None:
        raise LookupError(f"{route.pattern}: give the pattern a name so the scan can reverse it.")
    sets = by_route[route.name](c) if route.name in by_route else [{}]
    urls = []
    for given in sets:
        missing = [p for p in route.params if p not in given]
        if unknown := [p for p in missing if p not in by_name]:
            raise LookupError(
                f"{route.pattern} ({route.name}): the privacy scan doesn't know how to fill "
                f"<{'>, <'.join(unknown)}>. Add it to BY_NAME (if it means the same on every "
                f"route) or BY_ROUTE[{route.name!r}] in tests/community/test_quiet_by_default.py, "
                "or, if members can never load it, to SKIPPED with the reason."
            )
        for values in itertools.product(*(by_name[p](c) for p in missing)):
            url = reverse(route.name, kwargs={**given, **dict(zip(missing, values, strict=True))})
            if route.name in QUERY:
                query = QUERY[route.name](c)
                url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
            urls.append(url)
    return urls


def response_text(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return f"{headers}\n{response.cookies.output()}\n{body.decode('utf-8', 'replace')}"


@pytest.fixture
def community(group, facilitator, member, outsider, moderator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # notifications follow commits
        return build_community(group, facilitator, member, outsider, moderator)


@pytest.mark.django_db
@pytest.mark.parametrize("viewer_role", ["member", "facilitator"])
def test_no_page_or_api_a_member_can_load_shows_another_members_email(
    request, community, viewer_role
):
    c = community
    c.viewer = request.getfixturevalue(viewer_role)
    needles = private_details(c.viewer)
    assert c.rowan.email in needles and "rowan-private-" in " ".join(needles)
    assert c.viewer.email not in needles  # one's own address is one's own to see

    # A page that fails is reported with the rest, so one broken page hides no leak elsewhere.
    client = Client(raise_request_exception=False)
    client.force_login(c.viewer)
    problems, fetched = [], 0
    for route in all_routes():
        if any(route.pattern.startswith(prefix) for prefix in SKIPPED):
            continue
        try:
            urls = urls_for(route, c)
        except LookupError as error:
            problems.append(str(error))
            continue
        for url in urls:
            response = client.get(url)  # no redirects followed: a redirect is scanned too
            fetched += 1
            if response.status_code >= 500:
                problems.append(f"GET {url} failed ({response.status_code}): it went unscanned")
            if found := leaked(response_text(response), needles):
                problems.append(f"GET {url} ({response.status_code}) shows {found}")
            if "_auth_user_id" not in client.session:
                problems.append(f"GET {url} signed the viewer out: a GET must change nothing")
                client.force_login(c.viewer)

    assert not problems, "\n".join(problems)
    assert fetched > 50  # the walk really walked


def test_the_member_model_keeps_no_real_name():
    """Members are pseudonymous. Should a private field (a real name) ever be added, the scan
    above fills it with a distinctive value and looks for it; this names what it looks for."""
    assert private_user_fields() == ["email"]


def test_the_walker_asks_for_a_mapping_when_it_meets_a_new_parameter():
    route = Route("groups/<slug:slug>/rounds/<int:round_no>/", "groups:round", ("slug", "round_no"))
    with pytest.raises(LookupError, match=r"fill <round_no>.*BY_NAME.*BY_ROUTE\['groups:round'\]"):
        urls_for(route, SimpleNamespace())


# --- Frames ------------------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://localhost:8000")
# A frame names people by display name only: no key that could carry a person's id, and no
# "id" beside a "name" (a person's entry).
ID_KEYS = {"user", "users", "member", "members", "reactors", "facilitator_ids"}
ID_SUFFIXES = ("user_id", "user_ids", "author_id", "member_id", "member_ids")


@pytest.fixture
async def _fresh_channel_layer():
    yield
    # Closes this loop's Redis connections and forgets its subscriptions.
    await get_channel_layer().flush()


async def connect(user, path):
    key = await database_sync_to_async(make_session_key)(user)
    headers = [ORIGIN, (b"cookie", f"sessionid={key}".encode())]
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def send(comm, **frame):
    await comm.send_to(text_data=json.dumps(frame))


async def next_frame(comm, *, timeout=5) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def frames_until(comm, done, *, timeout=5) -> list[dict]:
    """Every frame up to and including the first for which ``done(frame)`` is true."""
    frames = []
    while not frames or not done(frames[-1]):
        frames.append(await next_frame(comm, timeout=timeout))
    return frames


async def drain(comm, *, quiet=0.3) -> list[dict]:
    """Every frame that arrives until ``quiet`` seconds pass with none."""
    frames = []
    while not await comm.receive_nothing(timeout=quiet):
        frames.append(await next_frame(comm))
    return frames


def id_keys(value, path="frame") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ID_KEYS or key.endswith(ID_SUFFIXES) or (key == "id" and "name" in value):
                found.append(f"{path}.{key}")
            found += id_keys(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            found += id_keys(inner, f"{path}[{n}]")
    return found


def room_cast(group, facilitator):
    """Rowan and Sorrel in the room (Sorrel hidden), a meeting to cancel, the seed data."""
    install_seed_data()  # the held-message rule: this test's database starts empty
    tag = secrets.token_hex(4)
    rowan, sorrel = person("Rowan", tag), person("Sorrel", tag)
    for user in (rowan, sorrel):
        make_membership(group, user)
    services.set_presence_hidden(group, user=sorrel, hidden=True)
    meeting = make_meeting(group, actor=facilitator)
    return SimpleNamespace(rowan=rowan, sorrel=sorrel, sitting=meeting.occurrences.get())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_room_and_notification_frames_carry_display_names_only(group, facilitator, member):
    c = await database_sync_to_async(room_cast)(group, facilitator)
    willow_room = await connect(member, f"/ws/groups/{group.slug}/")
    willow_me = await connect(member, "/ws/me/")
    rowan = await connect(c.rowan, f"/ws/groups/{group.slug}/")
    sorrel = await connect(c.sorrel, f"/ws/groups/{group.slug}/")
    await send(willow_room, type="resume", after=0, since=0)

    # Others talk, through their sockets and through services: a message, a wave, Sorrel's
    # email (held for a moderator), a reaction, an edit, a deletion; one frame at a time, so
    # the seqs are known.
    async def post(comm, **frame):
        await send(comm, client_id=str(uuid.uuid4()), **frame)
        return (await frames_until(comm, lambda f: f["type"] == "ack"))[-1]["seq"]

    evening = await post(rowan, type="send", body="Evening, all.")
    await post(rowan, type="wave")
    await post(sorrel, type="send", body=f"Mail me: {c.sorrel.email}")
    await send(rowan, type="react", seq=evening, reaction="hear_you")
    await send(rowan, type="edit", seq=evening, body="Evening, everyone.")
    await frames_until(rowan, lambda f: f["type"] == "update" and f["body"].endswith("everyone."))
    welcome = await database_sync_to_async(say)(group, facilitator, "Hi.", content_warning="grief")
    await database_sync_to_async(services.delete_message)(group, actor=facilitator, seq=welcome.seq)
    await database_sync_to_async(services.record_check_in)(
        c.rowan, group=group, presence=4, feelings=["hopeful"], note="Here.", audience="group"
    )
    await database_sync_to_async(services.start_round)(
        group, actor=facilitator, prompt="One word for today?"
    )
    await database_sync_to_async(say)(group, facilitator, "That's all for now.")
    await database_sync_to_async(services.cancel_occurrence)(c.sitting, actor=facilitator)

    room_frames = await frames_until(willow_room, lambda f: f.get("body") == "That's all for now.")
    room_frames += await drain(willow_room)
    me_frames = await frames_until(willow_me, lambda f: f["type"] == "notification")

    needles = await database_sync_to_async(private_details)(member)
    kinds = {f["type"] for f in room_frames}
    assert {"presence", "message", "update", "resumed", "round"} <= kinds, kinds
    assert any("Rowan" in json.dumps(f) for f in room_frames if f["type"] == "round")
    # Sorrel hid her presence before she came in: no presence list, and no round, names her.
    assert not [f for f in room_frames if f["type"] in ("presence", "round") and "Sorrel" in str(f)]
    for frame in room_frames + me_frames:
        text = json.dumps(frame, ensure_ascii=False)
        assert not leaked(text, needles), text
        assert not id_keys(frame), frame
    # The notification's own id is the notification's, not a person's.
    notification_ids = await database_sync_to_async(
        lambda: set(Notification.objects.values_list("pk", flat=True))
    )()
    assert me_frames[-1]["id"] in notification_ids
    for comm in (willow_room, willow_me, rowan, sorrel):
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_the_room_has_no_typing_indicator_and_no_read_receipts(group, facilitator, member):
    seq = (await database_sync_to_async(say)(group, facilitator, "Evening, all.")).seq
    willow = await connect(member, f"/ws/groups/{group.slug}/")
    maple = await connect(facilitator, f"/ws/groups/{group.slug}/")
    await drain(willow)
    await drain(maple)

    for frame_type in ("typing", "typing_start", "stop_typing", "seen", "receipt"):
        await send(willow, type=frame_type, seq=seq)
        answer = await next_frame(willow)
        assert (answer["type"], answer["code"]) == ("error", "unknown_type"), answer
    await send(willow, type="read", seq=seq)

    def read_marker():
        return Membership.objects.get(group=group, user=member).last_read_seq

    for _ in range(50):  # the read marker moves (unread counts use it) ...
        if await database_sync_to_async(read_marker)() == seq:
            break
        await asyncio.sleep(0.05)
    assert await database_sync_to_async(read_marker)() == seq
    # ... and nobody else hears of it, nor of anything Willow typed.
    assert await maple.receive_nothing(timeout=0.5)
    assert await willow.receive_nothing(timeout=0.1)
    await willow.disconnect()
    await maple.disconnect()


# --- Presence ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_outsider_cannot_load_the_room_or_its_history(client, group, facilitator, outsider):
    say(group, facilitator, "Evening, all.")
    client.force_login(outsider)
    for url in [
        reverse("groups:room", kwargs={"slug": group.slug}),
        reverse("groups:room_history", kwargs={"slug": group.slug}) + "?before=2",
    ]:
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert "Maple" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_an_outsider_gets_no_presence_and_is_closed(group, facilitator, outsider):
    maple = await connect(facilitator, f"/ws/groups/{group.slug}/")
    key = await database_sync_to_async(make_session_key)(outsider)
    comm = WebsocketCommunicator(
        application,
        f"/ws/groups/{group.slug}/",
        headers=[ORIGIN, (b"cookie", f"sessionid={key}".encode())],
    )
    await comm.connect(timeout=5)
    outputs = []
    while not outputs or outputs[-1]["type"] != "websocket.close":
        outputs.append(await comm.receive_output(timeout=5))
    assert outputs[-1].get("code") == 4403
    assert [o for o in outputs if o["type"] == "websocket.send"] == []
    await maple.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_a_member_who_hides_their_presence_is_left_out_of_what_others_receive(
    group, facilitator, member
):
    def present(frame):
        return [p["name"] for p in frame["present"]]

    willow = await connect(member, f"/ws/groups/{group.slug}/")
    maple = await connect(facilitator, f"/ws/groups/{group.slug}/")
    seen = await frames_until(willow, lambda f: f["type"] == "presence" and "Maple" in present(f))
    assert seen

    await send(maple, type="presence", hidden=True)
    mine = await frames_until(maple, lambda f: f["type"] == "presence" and f["hidden"])
    assert "Maple" not in present(mine[-1])
    theirs = await frames_until(
        willow, lambda f: f["type"] == "presence" and "Maple" not in present(f)
    )
    assert present(theirs[-1]) == ["Willow"]
    # Stays out while hidden: Willow's own comings and goings don't bring Maple back.
    again = await connect(member, f"/ws/groups/{group.slug}/")
    for frame in await drain(again) + await drain(willow):
        if frame["type"] == "presence":
            assert "Maple" not in present(frame)

    await send(maple, type="presence", hidden=False)
    back = await frames_until(willow, lambda f: f["type"] == "presence" and "Maple" in present(f))
    assert present(back[-1]) == ["Maple", "Willow"]
    for comm in (willow, maple, again):
        await comm.disconnect()
