"""The access matrix: every URL and every WebSocket route, as each kind of person, gets exactly
the answer the product allows.

The URLs are generated, not listed: the walk of ``test_quiet_by_default`` enumerates every URL
pattern and fills its parameters from the same busy synthetic community, here for one group,
the "Evening circle" (the roles are about it). Each route name then needs an entry in
``MATRIX`` below saying what each role gets, so a new route fails this test until someone
decides who may load it. A route that only takes a POST is asked with an empty body (the
refusal, never a 500) and its GET must answer 405 (or send an anonymous visitor to sign in).

The roles (``ROLES``): an anonymous visitor; a member of another group; a member (Willow); a
muted member (a moderator's mute: an active membership with ``muted_until`` ahead); a member a
moderator removed; one banned from the group (the membership statuses); a facilitator of
another group; the group's facilitator (Maple); a site moderator (Cedar, staff, no TOTP yet).
One more person is checked against the anonymous column: an account a site moderator closed
(``moderation.services.ban_member`` deactivates it) is signed out everywhere, sockets too.

Things that belong to one person (notifications, check-ins, sessions, data exports, calendar
feeds, unsubscribe links) are Sorrel's or Rowan's, members who are none of the roles, unless the
entry says whose they are.

The Django admin is one gate (``CommunityAdminSite.has_permission``), so every admin route has
the one entry ``ADMIN``: a redirect to the admin's sign-in counts as whatever that sign-in
answers the role (anonymous: allauth's sign-in; members: refused; facilitators and staff
without TOTP: asked to set TOTP up first). Nobody here reaches an admin page.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.template import Template
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils import timezone

from community.asgi import application
from community.models import Notification, User
from community.routing import websocket_urlpatterns
from groups.models import MembershipStatus
from tests.community.test_quiet_by_default import (
    BY_NAME,
    BY_ROUTE,
    ORIGIN,
    _fresh_channel_layer,  # noqa: F401 -- a fixture the socket test uses by name
    all_routes,
    community,  # noqa: F401 -- the privacy scan's community, a fixture used by name
    person,
    urls_for,
)
from tests.factories import make_group, make_membership, make_session_key

# --- Roles and answers ---------------------------------------------------------------------------

ROLES = (
    "anonymous",
    "member_of_other_group",
    "member",
    "muted",
    "removed",
    "banned",
    "facilitator_of_other_group",
    "facilitator",
    "site_moderator",
)
SIGNED_IN = ROLES[1:]
# Checked against the anonymous column: a closed account is signed out everywhere.
CLOSED_ACCOUNT = "closed_account"

OK = "ok"  # 200
LOGIN = "login"  # a redirect to sign in
FORBIDDEN = "forbidden"  # 403
NOT_FOUND = "not_found"  # 404
METHOD = "method"  # 405
INVALID = "invalid"  # 400: the empty body is refused
CONFLICT = "conflict"  # 409: the person's current state says no (a kind page saying why)
REDIRECT = "redirect"  # 302 anywhere else (done, or back with a message)
MFA = "mfa"  # sent to set up a second factor before the admin opens


def rule(signed_in: str, *, anonymous: str = LOGIN, **roles: str) -> dict[str, str]:
    """Each role's answer: ``signed_in`` for everyone signed in, ``anonymous`` for a visitor,
    and the roles named otherwise."""
    assert set(roles) <= set(SIGNED_IN), set(roles) - set(SIGNED_IN)
    return {"anonymous": anonymous, **dict.fromkeys(SIGNED_IN, signed_in), **roles}


@dataclass(frozen=True)
class Post:
    """A route that only takes a POST: ``answers`` is what an empty POST gets. Its GET answers
    405, but an anonymous visitor is sent to sign in first where the POST does that too."""

    answers: dict[str, str] | tuple[dict[str, str], ...]


PUBLIC = rule(OK, anonymous=OK)
SIGNED_IN_PAGE = rule(OK)
GUESTS_ONLY = rule(REDIRECT, anonymous=OK)  # signing in, signing up: the signed-in go home
GROUP_MEMBERS = rule(FORBIDDEN, member=OK, muted=OK, facilitator=OK)
# Site moderators manage every group (``groups.selectors.can_manage_group``) but do not read
# its room: they see content through the moderation queue.
GROUP_MANAGERS = rule(FORBIDDEN, facilitator=OK, site_moderator=OK)
MEMBERS_AND_MANAGERS = rule(FORBIDDEN, member=OK, muted=OK, facilitator=OK, site_moderator=OK)
MANAGERS_ACT = rule(FORBIDDEN, facilitator=REDIRECT, site_moderator=REDIRECT)
# One's own place in the group (leave, listen): members act, others are told they aren't one.
MEMBERS_ACT = rule(CONFLICT, member=REDIRECT, muted=REDIRECT, facilitator=REDIRECT)
NOBODYS = rule(NOT_FOUND)  # someone else's thing: nobody learns it exists
ONLY_WILLOWS = rule(NOT_FOUND, member=REDIRECT)

MATRIX: dict[str, dict[str, str] | tuple[dict[str, str], ...] | Post] = {
    "home": PUBLIC,
    "help": PUBLIC,
    # One's own account and data.
    "profile": SIGNED_IN_PAGE,
    "notification_preferences": SIGNED_IN_PAGE,
    "my_data": SIGNED_IN_PAGE,
    "data_export_request": Post(rule(REDIRECT)),
    "data_export_download": rule(FORBIDDEN),  # Sorrel's and Rowan's links
    "data_export_view": rule(FORBIDDEN),
    "account_erase": Post(rule(INVALID)),  # the confirmation is missing
    "my_sessions": SIGNED_IN_PAGE,
    "session_end": Post(NOBODYS),
    "notifications": SIGNED_IN_PAGE,
    "notifications_read_all": Post(rule(REDIRECT)),
    "notification_read": Post(NOBODYS),
    # The link in Sorrel's email works without signing in; signed in as someone else, no.
    "notification_unsubscribe": rule(FORBIDDEN, anonymous=OK),
    # allauth: signing in and out, email, passwords, the second factor, sessions.
    "account_login": GUESTS_ONLY,
    "account_logout": rule(OK, anonymous=REDIRECT),
    "account_inactive": PUBLIC,
    "account_signup": GUESTS_ONLY,
    "account_reauthenticate": SIGNED_IN_PAGE,
    "account_email": SIGNED_IN_PAGE,
    "account_email_verification_sent": PUBLIC,
    "account_change_password": SIGNED_IN_PAGE,
    "account_set_password": rule(REDIRECT),  # everyone has one: to changing it
    "account_reset_password": PUBLIC,
    "account_confirm_login_code": rule(REDIRECT),  # no code is pending
    "account_confirm_email": PUBLIC,  # the key is the secret (mailed to Sorrel)
    "account_reset_password_from_key_done": PUBLIC,
    "account_reset_password_from_key": rule(REDIRECT, anonymous=REDIRECT),  # the key to the session
    "account_reset_password_done": PUBLIC,
    "mfa_index": SIGNED_IN_PAGE,
    "mfa_authenticate": rule(REDIRECT),  # nobody is half-way through signing in
    "mfa_reauthenticate": rule(REDIRECT),
    "mfa_activate_totp": rule(REDIRECT),  # the password once more first
    "mfa_deactivate_totp": NOBODYS,  # nobody here has TOTP
    "mfa_view_recovery_codes": NOBODYS,
    "mfa_generate_recovery_codes": rule(REDIRECT),
    "mfa_download_recovery_codes": NOBODYS,
    "usersessions_list": SIGNED_IN_PAGE,
    # Groups: finding, starting, joining, leaving, managing.
    "groups:directory": PUBLIC,
    "groups:create": rule(
        FORBIDDEN, facilitator_of_other_group=OK, facilitator=OK, site_moderator=OK
    ),
    "groups:detail": PUBLIC,
    "groups:edit": GROUP_MANAGERS,
    "groups:archive": Post(MANAGERS_ACT),
    # A moderator's decision can't be undone by joining again.
    "groups:join": rule(OK, removed=FORBIDDEN, banned=FORBIDDEN),
    "groups:leave": Post(MEMBERS_ACT),
    "groups:leave_waitlist": Post(rule(CONFLICT)),
    "groups:withdraw_request": Post(rule(CONFLICT)),
    "groups:agreement": SIGNED_IN_PAGE,
    "groups:agreement_history": PUBLIC,
    "groups:listening": Post(MEMBERS_ACT),
    "groups:requests": GROUP_MANAGERS,
    "groups:decide_request": Post(MANAGERS_ACT),
    "groups:invites": GROUP_MANAGERS,
    "groups:revoke_invite": Post(MANAGERS_ACT),
    # This group's invitation link, and Lantern circle's (a full group).
    "groups:invite": (rule(OK, removed=FORBIDDEN, banned=FORBIDDEN), rule(OK)),
    # Meetings.
    "groups:meetings": MEMBERS_AND_MANAGERS,
    "groups:meeting_create": GROUP_MANAGERS,
    "groups:meeting_detail": GROUP_MANAGERS,
    "groups:meeting_edit": GROUP_MANAGERS,
    "groups:meeting_cancel": GROUP_MANAGERS,
    "groups:meeting_ics": MEMBERS_AND_MANAGERS,
    # The empty answer is refused once the person may see the sitting at all.
    "groups:rsvp": Post(
        rule(
            FORBIDDEN,
            member=CONFLICT,
            muted=CONFLICT,
            facilitator=CONFLICT,
            site_moderator=CONFLICT,
        )
    ),
    "groups:occurrence_cancel": GROUP_MANAGERS,
    "groups:occurrence_move": GROUP_MANAGERS,
    "groups:my_calendar": SIGNED_IN_PAGE,
    "groups:my_calendar_revoke": Post(rule(REDIRECT)),
    "groups:calendar_feed": PUBLIC,  # the secret address is the key: calendar apps fetch it
    # The room.
    "groups:room": GROUP_MEMBERS,
    "groups:room_history": GROUP_MEMBERS,
    "groups:room_person": Post(
        rule(FORBIDDEN, member=REDIRECT, muted=REDIRECT, facilitator=REDIRECT)
    ),
    # The form is read first: without JavaScript a refusal is a message back in the room.
    "moderation:report_message": Post(rule(REDIRECT)),
    "groups:record_check_in": Post(rule(REDIRECT)),
    "groups:skip_check_in": Post(rule(REDIRECT)),  # "not today" is one's own
    "groups:shared_check_ins": GROUP_MANAGERS,
    "groups:my_check_ins": SIGNED_IN_PAGE,
    "groups:delete_check_in": Post(NOBODYS),
    "groups:boundaries": SIGNED_IN_PAGE,
    # Safe persons: Willow and Sorrel are connected; Maple has invited Willow, Rowan Sorrel.
    "groups:safe_persons": SIGNED_IN_PAGE,
    "groups:safe_person_invite": Post(rule(INVALID)),
    "groups:safe_person_accept": Post((ONLY_WILLOWS, NOBODYS)),
    "groups:safe_person_decline": Post((ONLY_WILLOWS, NOBODYS)),
    "groups:safe_person_withdraw": Post((rule(NOT_FOUND, facilitator=REDIRECT), NOBODYS)),
    "groups:safe_person_end": Post(ONLY_WILLOWS),
    "groups:safe_person_availability": Post(rule(INVALID)),
    "groups:safe_person_availability_remove": Post(rule(REDIRECT)),
    "groups:safe_person_status": Post(rule(INVALID)),
    "groups:safe_person_status_clear": Post(rule(REDIRECT)),
    "groups:safe_person_room": rule(NOT_FOUND, member=OK),  # Willow and Sorrel's pair room
    "groups:people": SIGNED_IN_PAGE,
    "groups:people_choose": Post(rule(INVALID)),
    "groups:people_undo": Post(rule(REDIRECT)),
    # The practice space: one's own (Willow's is open; everyone else sees the introduction).
    # An empty POST opens one's own, posts nothing (no group chosen) and clears nothing (the
    # box isn't ticked), each back on the practice page with a note.
    "companion:practice": SIGNED_IN_PAGE,
    "companion:open": Post(rule(REDIRECT)),
    "companion:state": SIGNED_IN_PAGE,
    "companion:share": Post(rule(REDIRECT)),
    "companion:clear": Post(rule(REDIRECT)),
    # Moderation, as a member sees it.
    "moderation:mine": SIGNED_IN_PAGE,
    "moderation:appeal": Post(ONLY_WILLOWS),  # the warning Willow was given
}

# The GET of a route that only takes a POST answers before anything about the person matters
# (``require_POST``), so it is asked as a visitor (sent to sign in first) and as a member.
POST_ONLY_GETS = ("anonymous", "member")

# Every route under admin/ (a GET). The gate answers before any admin view runs, and what it
# answers depends on the person alone, so every admin URL is asked by one person of each
# answer (``ADMIN_WALKERS``: is each behind the gate?) and every role asks the gate itself
# (``ADMIN_GATE``: what does it say to them?).
ADMIN_PREFIX = "admin/"
ADMIN = rule(FORBIDDEN, facilitator_of_other_group=MFA, facilitator=MFA, site_moderator=MFA)
ADMIN_WALKERS = ("anonymous", "member", "site_moderator")
ADMIN_GATE = ("/admin/", "/admin/moderation/queueitem/")
# Admin URL parameters: any value does, since nobody passes the gate.
ADMIN_VALUES = {
    "object_id": "1",
    "content_type_id": "1",
    "id": "1",
    "item_id": "1",
    "action": "hide",
    "app_label": "groups",
}

# The socket routes (community/routing.py), by pattern: what each role's connection gets.
OPEN = "open"  # accepted, and stays open
CLOSED_4401 = "closed 4401"  # not signed in
CLOSED_4403 = "closed 4403"  # not one of the group's active members

WS_MATRIX = {
    "ws/me/": rule(OPEN, anonymous=CLOSED_4401),
    "ws/groups/<slug:slug>/": rule(
        CLOSED_4403, anonymous=CLOSED_4401, member=OPEN, muted=OPEN, facilitator=OPEN
    ),
}


def columns(entry) -> tuple[dict[str, str], ...]:
    """An entry's answers, one set per URL the route is filled with (or one for all)."""
    answers = entry.answers if isinstance(entry, Post) else entry
    return answers if isinstance(answers, tuple) else (answers,)


def expected_for(entry, role: str, variant: int) -> tuple[str, str | None]:
    """(the GET's answer, the empty POST's answer or None) for ``role`` at one URL."""
    answers = columns(entry)
    answer = answers[variant if len(answers) > 1 else 0][role]
    if isinstance(entry, Post):
        return (LOGIN if answer == LOGIN else METHOD), answer
    return answer, None


# --- The people ------------------------------------------------------------------------------------


def make_roles(group, other_group, *, member, facilitator, moderator) -> dict[str, User | None]:
    """The roles about ``group``, plus a closed account (a member whose account a site
    moderator closed: the ban deactivates it and leaves the membership as it was)."""
    group.refresh_from_db()
    now = timezone.now()

    def someone(name, where, **membership):
        user = person(name, "matrix")
        make_membership(where, user, **membership)
        return user

    return {
        "anonymous": None,
        "member_of_other_group": someone("Alder", other_group),
        "member": member,
        # As moderation.services.mute_member does it: a time ahead, the membership active.
        "muted": someone("Hazel", group, muted_until=now + timedelta(hours=2)),
        "removed": someone("Aspen", group, status=MembershipStatus.REMOVED, left_at=now),
        "banned": someone("Thorn", group, status=MembershipStatus.BANNED, left_at=now),
        "facilitator_of_other_group": someone("Birch", other_group, role="facilitator"),
        "facilitator": facilitator,
        "site_moderator": moderator,
        CLOSED_ACCOUNT: closed(someone("Yarrow", group)),
    }


def closed(user):
    User.objects.filter(pk=user.pk).update(is_active=False)  # as ban_member closes an account
    return user


# --- Answers -------------------------------------------------------------------------------------


def answer_of(response, *, admin_gate: str | None = None) -> str:
    status = response.status_code
    if status in (301, 302, 303, 307):
        try:
            name = resolve(urlsplit(response["Location"]).path).view_name
        except Resolver404:
            return REDIRECT
        if name == "account_login":
            return LOGIN
        if name == "mfa_activate_totp":
            return MFA
        # The admin's own pages send whoever the gate turns away to its sign-in (logging out
        # of the admin goes to its index, which does the same).
        if name in ("admin:login", "admin:index") and admin_gate is not None:
            return admin_gate
        return REDIRECT
    known = {200: OK, 400: INVALID, 403: FORBIDDEN, 404: NOT_FOUND, 405: METHOD, 409: CONFLICT}
    return known.get(status, f"status {status}")


def matrix_urls(c) -> dict[str, list[str]]:
    """Every non-admin route's URLs, filled as the privacy scan fills them, for one group; the
    viewer-relative values (``c.viewer``) are Sorrel's."""
    c.viewer = c.sorrel
    by_name = {**BY_NAME, "slug": lambda c: [c.group.slug]}
    by_route = {
        **BY_ROUTE,
        # Sorrel's own only: the scan's "someone else's" is whoever comes first.
        "notification_read": lambda c: [
            {"pk": n.pk} for n in Notification.objects.filter(user=c.sorrel)[:1]
        ],
        "groups:delete_check_in": lambda c: BY_ROUTE["groups:delete_check_in"](c)[:1],
    }
    found = {}
    for route in all_routes():
        if route.pattern.startswith(ADMIN_PREFIX):
            continue
        found[route.name] = urls_for(route, c, by_name=by_name, by_route=by_route)
    return found


def admin_urls() -> list[str]:
    urls = []
    for route in all_routes():
        if not route.pattern.startswith(ADMIN_PREFIX):
            continue
        if route.name is None:  # the admin's catch-all
            urls.append(f"/{ADMIN_PREFIX}no-such-page/")
            continue
        try:
            urls.append(reverse(route.name, kwargs={p: ADMIN_VALUES[p] for p in route.params}))
        except (KeyError, NoReverseMatch) as error:
            raise AssertionError(
                f"{route.pattern} ({route.name}): add a value for its parameters to ADMIN_VALUES "
                f"in {__name__} ({error!r})."
            ) from error
    return urls


def get(client, url: str, **answer_options) -> str:
    return answer_of(client.get(url), **answer_options)


def post(client, url: str) -> str:
    """An empty POST whose changes (where it does something) are rolled back, so the next
    role finds the community as it was."""
    with transaction.atomic():
        response = client.post(url)
        transaction.set_rollback(True)
    return answer_of(response)


def walk_as(role: str, user, urls: dict[str, list[str]], admin: list[str]) -> list[tuple]:
    """Every request of the walk as ``role``: (role, method, URL, route, answer, expected)."""
    column = "anonymous" if role == CLOSED_ACCOUNT else role
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)  # the closed account too: its session outlives the ban
    asked = []
    for name, route_urls in urls.items():
        if name not in MATRIX:
            continue  # test_every_route_has_an_entry_in_the_matrix names it
        for variant, url in enumerate(route_urls):
            want_get, want_post = expected_for(MATRIX[name], column, variant)
            if want_post is None or role in POST_ONLY_GETS:
                asked.append((role, "GET", url, name, get(client, url), want_get))
            if want_post is None:
                continue
            asked.append((role, "POST", url, name, post(client, url), want_post))
            if column != "anonymous" and "_auth_user_id" not in client.session:
                client.force_login(user)  # the POST ended the session: on with the walk
    gate = get(client, reverse("admin:login"))
    for url in admin if role in ADMIN_WALKERS else ADMIN_GATE:
        asked.append(
            (role, "GET", url, "the admin", get(client, url, admin_gate=gate), ADMIN[column])
        )
    return asked


# --- Tests ---------------------------------------------------------------------------------------


def test_every_route_has_an_entry_in_the_matrix():
    names = {r.name for r in all_routes() if not r.pattern.startswith(ADMIN_PREFIX)}
    missing = sorted(str(name) for name in names - MATRIX.keys())
    assert not missing, (
        f"No access matrix entry for {', '.join(missing)}: add one to MATRIX in {__name__} "
        "saying what each role gets (anonymous, a member of another group, a member, muted, "
        "removed, banned, a facilitator of another group, the facilitator, a site moderator)."
    )
    stale = sorted(MATRIX.keys() - names)
    assert not stale, f"MATRIX names routes that no longer exist: {', '.join(stale)}"
    for name, entry in MATRIX.items():
        for answers in columns(entry):
            assert set(answers) == set(ROLES), name


def test_every_websocket_route_has_an_entry_in_the_matrix():
    patterns = {str(route.pattern) for route in websocket_urlpatterns}
    assert patterns == WS_MATRIX.keys(), (
        f"Socket routes without an entry: {sorted(patterns - WS_MATRIX.keys())}; entries for no "
        f"route: {sorted(WS_MATRIX.keys() - patterns)}. Add each route to WS_MATRIX in {__name__}."
    )


@pytest.mark.django_db
def test_every_role_gets_exactly_the_allowed_answer_at_every_url(
    community,  # noqa: F811 -- the fixture imported above
    member,
    facilitator,
    moderator,
    monkeypatch,
):
    # The walk looks at answers, not at templates: rendering as Django does outside tests,
    # without the test runner's instrumentation (a copy of the context for every template,
    # include and widget), makes it several times faster.
    monkeypatch.setattr(Template, "_render", lambda self, context: self.nodelist.render(context))
    c = community
    roles = make_roles(
        c.group, c.lantern, member=member, facilitator=facilitator, moderator=moderator
    )
    urls = matrix_urls(c)
    mismatched = [
        f"{name}: filled with {len(route_urls)} URLs, but MATRIX has {len(columns(entry))} "
        "sets of answers for it"
        for name, route_urls in urls.items()
        if (entry := MATRIX.get(name)) and len(columns(entry)) not in (1, len(route_urls))
    ]
    assert not mismatched, "\n".join(mismatched)

    admin = admin_urls()
    asked = [
        request for role, user in roles.items() for request in walk_as(role, user, urls, admin)
    ]
    problems = [
        f"{role}: {method} {url} ({name}) answered {got}, not {want}"
        for role, method, url, name, got, want in asked
        if got != want
    ]
    assert not problems, f"{len(problems)} unexpected answers:\n" + "\n".join(problems)
    assert len(asked) > 1000  # the walk really walked


# --- Sockets -------------------------------------------------------------------------------------

# Path parameters of the socket routes: the Evening circle, whose room the roles are about.
WS_VALUES = {"slug": "evening-circle"}


def socket_path(pattern: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: WS_VALUES[m[1]], pattern)


async def open_as(user, path):
    headers = [ORIGIN]
    if user is not None:
        key = await database_sync_to_async(make_session_key)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected  # every refusal is an accept and then a close with a reason
    return comm


async def settled(comm, *, quiet=0.5) -> str:
    """How the socket stands once ``quiet`` seconds pass with nothing more from the server:
    closed (with its code) or open."""
    while not await comm.receive_nothing(timeout=quiet):
        output = await comm.receive_output()
        if output["type"] == "websocket.close":
            return f"closed {output.get('code')}"
    return OPEN


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
async def test_every_role_gets_exactly_the_allowed_answer_on_every_socket(
    group, member, facilitator, moderator
):
    other = await database_sync_to_async(make_group)(name="Lantern circle")
    roles = await database_sync_to_async(make_roles)(
        group, other, member=member, facilitator=facilitator, moderator=moderator
    )
    assert group.slug == WS_VALUES["slug"]
    asked = [
        (role, pattern, await open_as(user, socket_path(pattern)))
        for pattern in WS_MATRIX
        for role, user in roles.items()
    ]
    # All at once, so the sockets share one quiet wait.
    answers = await asyncio.gather(*(settled(comm) for _, _, comm in asked))

    problems = []
    for (role, pattern, _), got in zip(asked, answers, strict=True):
        want = WS_MATRIX[pattern]["anonymous" if role == CLOSED_ACCOUNT else role]
        if got != want:
            problems.append(f"{role}: {pattern} {got}, not {want}")
    for _, _, comm in asked:
        await comm.disconnect()
    assert not problems, "\n".join(problems)
