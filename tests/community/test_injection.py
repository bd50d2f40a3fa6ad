"""Injection: text a member writes never becomes markup, wherever it is shown.

Generated text (Hypothesis) and a corpus of well-known cross-site scripting payloads
(``tests/data/xss_payloads.txt``) go through the real server-side renderers of every place
member text appears:

- the room: each message as ``templates/groups/room/message.html`` draws it, with the frame
  ``groups.views.room`` builds for each kind of reader (author, reader, one who softens every
  topic, one who muted the author), text messages and check-in cards, held or not;
- the frames the room's socket sends, which ``static/js/room.js`` draws (see below);
- the notifications page, a page of notifications at a time;
- the notification email (its HTML part);
- the moderators' queue items in the admin (a reported message in its context, the report, an
  appeal, the member's moderation history);
- the readable page of a member's data export, member text in every text cell.

Each Hypothesis example carries a batch of distinct texts, drawn once and spread over one page
(or one batch of messages or emails), so that the drawing and each page's own cost are shared
by many texts. Each renderer counts the distinct non-empty texts it really put into its output
(whole, or up to each place's length limit) and must reach its floor in ``TEXTS_SHOWN`` (1,500
to 2,250): 10,000 at least over the five, not counting the socket frames (the room's texts
again), the corpus or ``render_body``'s own test. The whole file takes under a minute of CPU
(about 50 s, test database included, measured on this 2-core machine under other load).

The check: each output is compared with the same renderer's output for the same data with each
member text replaced by a neutral stand-in ("x", with the same line breaks where
``linebreaksbr`` shows them; "" stays ""). Both are parsed with ``html.parser``; the hostile one
may hold only elements and attributes the neutral one holds (the allowed set), in the same
structure, except the links ``render_body`` makes (an ``a`` whose ``href`` is http(s), equal to
its text, with the ``rel`` the code sets); every URL attribute is a path or http(s). The tests
under "The check can fail" plant markup and show the checker catching it.

The client: live messages are drawn by ``static/js/room*.js``, which we check in two parts
instead of running a browser. (1) The frames: for each generated message the socket frame (what
``frame_for_viewer`` gives the consumer, through JSON) differs from its neutral twin's only in
the text fields the client shows (``body``, ``content_warning``, ``author.name``), each exactly
the member's text, and no frame field holds markup. (2) The scripts: a static check that no
script has a way to turn a string into markup or code (``innerHTML``, ``insertAdjacentHTML``,
``eval``...), that every element they create has a literal tag name, and that the only URLs
they set are http(s) links matched like the server's and their own form addresses. Together:
a member's words reach the page only as text nodes.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib import admin
from django.core.paginator import Paginator
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from community import data_selectors
from community import services as community_services
from community.models import DISPLAY_NAME_MAX, Mute, Notification, NotificationKind
from community.selectors import NOTIFICATIONS_PER_PAGE
from groups import selectors as group_selectors
from groups import services as group_services
from groups.models import CONTENT_WARNING_MAX_CHARS, MESSAGE_MAX_CHARS, Message, SensitiveTopic
from groups.views.room import _LINK, _frames, render_body
from moderation import selectors as moderation_selectors
from moderation import services as moderation_services
from moderation.models import APPEAL_MAX_CHARS, REPORT_DETAILS_MAX_CHARS, QueueItem
from moderation.services.actions import REASON_MAX_CHARS
from tests.factories import make_group, make_member, make_membership

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = [
    line
    for line in (ROOT / "tests" / "data" / "xss_payloads.txt").read_text().splitlines()
    if line and not line.startswith("# ")
]

# --- What user text may not do ---------------------------------------------------------------

BODY_LINK_REL = "nofollow noopener noreferrer"  # what groups.views.room.render_body sets
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "data", "cite", "background"}
SAFE_SCHEMES = {"http", "https"}
SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")


class Page(HTMLParser):
    """The elements, attributes and markup of one HTML output, in document order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.structure: list[tuple] = []  # ("start", tag, attribute names) / ("end", tag) / ...
        self.elements: set[tuple[str, str]] = set()  # (tag, attribute), (tag, "") for the tag
        self.body_links: list[tuple[dict, str]] = []  # render_body's links: attributes, text
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.text: list[str] = []
        self._in_link: list | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("rel") == BODY_LINK_REL and self._in_link is None:
            self._in_link = [attributes, []]
        else:
            self.structure.append(("start", tag, tuple(name for name, _value in attrs)))
            self.elements.add((tag, ""))
            self.elements.update((tag, name) for name, _value in attrs)
        self.urls.extend(
            (tag, name, value or "") for name, value in attrs if name in URL_ATTRIBUTES
        )

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "a" and self._in_link is not None:
            attributes, text = self._in_link
            self.body_links.append((attributes, "".join(text)))
            self._in_link = None
        else:
            self.structure.append(("end", tag))

    def handle_data(self, data):
        self.text.append(data)
        if self._in_link is not None:
            self._in_link[1].append(data)

    def handle_comment(self, data):
        self.structure.append(("comment",))

    def handle_decl(self, decl):
        self.structure.append(("decl", decl.lower()))

    def handle_pi(self, data):
        self.structure.append(("pi",))

    def unknown_decl(self, data):
        self.structure.append(("unknown_decl",))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def assert_safe_urls(page: Page, where: str) -> None:
    for tag, name, value in page.urls:
        # As browsers read it: control characters and spaces in a scheme are dropped.
        scheme = SCHEME.match(re.sub(r"[\x00-\x20]", "", value))
        scheme = scheme[1].lower() if scheme else None
        assert scheme in (None, *SAFE_SCHEMES), (
            f"{where}: a {scheme} address <{tag} {name}={value!r}>"
        )


def assert_no_markup_from_text(hostile: Page, neutral: Page, where: str) -> None:
    """The hostile output has exactly the neutral one's elements and attributes (plus
    render_body's http(s) links), and only safe URLs."""
    outside = hostile.elements - neutral.elements
    assert not outside, f"{where}: elements or attributes outside the allowed set: {outside}"
    assert hostile.structure == neutral.structure, f"{where}: user text changed the markup"
    for attributes, text in hostile.body_links:
        assert set(attributes) == {"href", "rel"}, f"{where}: a body link with {attributes}"
        assert re.match(r"https?://", attributes["href"], re.I), f"{where}: {attributes}"
        assert attributes["href"] == text, f"{where}: a link whose text is not its address"
    assert_safe_urls(hostile, where)


_NEWLINES = re.compile(r"\r\n|\r|\n")


def neutral(text: str, *, lines: bool = False) -> str:
    """A harmless stand-in with the same shape: empty stays empty, anything else becomes "x",
    plus, with ``lines`` (a field shown with ``linebreaksbr``, which makes each line break a
    ``<br>``), the same number of line breaks."""
    if not text:
        return ""
    return "x" + "\n" * len(_NEWLINES.findall(text)) if lines else "x"


# The frame fields static/js/room.js shows as text (textContent, text nodes, bodyNode's links).
FRAME_TEXT_PATHS = {("body",), ("content_warning",), ("author", "name")}


def string_leaves(value, path=()):
    """(path, string) for every string in a JSON value, and (path, None) for every key."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), None
            yield from string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def assert_frame_is_text(hostile: dict, calm: dict, texts: set[str], where: str) -> None:
    """A socket frame (as the client parses it) carries member text only where the client
    shows text, exactly as written, and no field holds markup: it differs from the frame of
    the same message with neutral text only in those fields."""
    hostile, calm = json.loads(json.dumps(hostile)), json.loads(json.dumps(calm))
    hostile_leaves, calm_leaves = dict(string_leaves(hostile)), dict(string_leaves(calm))
    assert hostile_leaves.keys() == calm_leaves.keys(), f"{where}: the text changed the frame"
    for path, value in hostile_leaves.items():
        assert not any("html" in str(part).lower() for part in path), f"{where}: {path}"
        if value != calm_leaves[path]:
            assert path in FRAME_TEXT_PATHS, f"{where}: member text in {path}: {value!r}"
            assert value in texts, f"{where}: {path} is not the member's text: {value!r}"


# --- Generated text --------------------------------------------------------------------------

FRAGMENTS = [
    "<", ">", '"', "'", "`", "&", ";", "=", "/", "\\", " ", "\n", "\r\n", "\t", "{", "}",
    "<script>", "</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">',
    "</a>", "<svg/onload=alert(1)>", "<!--", "-->", "<![CDATA[", "]]>", "<!DOCTYPE html>",
    "<?xml ?>", "javascript:", "data:text/html,", "http://", "https://", "HTTPS://", "ftp://",
    "//evil.test", "example.test/", "a.b/c?d=e&f=g#h", '" onmouseover="alert(1)', "' x='",
    " onerror=", " style=", "&lt;", "&#60;", "&#x3c;", "&amp;", "&quot;", "{{ ", " }}",
    "{% ", " %}", "${", "</p>", "</li>", "</textarea>", "<b>", "<p class=x>", "\u2028",
    "\u202e", "\ufeff", "\u00a0", "\U0001f49c", ".", ",", ")", "]", "!",
]  # fmt: skip

# Any text Postgres can store (no NUL, no lone surrogates): markup-shaped fragments and short
# runs of any characters, in any order.
_characters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
texts = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(_characters, min_size=1, max_size=4)),
    min_size=1,
    max_size=8,
).map("".join)


# One example is one list: drawing anything beside it makes Hypothesis vary that and repeat
# the list (measured: a fifth as many distinct texts), so per-item options ride in the list.


def batch(size: int):
    """``size`` distinct non-empty texts: one example's share for one page."""
    return st.lists(texts, min_size=size, max_size=size, unique=True)


def items(options: list, fields: int, size: int):
    """``size`` items, each (one of ``options``, ``fields`` texts), no text repeated in the
    same field."""
    return st.lists(
        st.tuples(st.sampled_from(options), *[texts] * fields),
        min_size=size,
        max_size=size,
        unique_by=tuple((lambda item, i=i: item[i]) for i in range(1, fields + 1)),
    )


HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,  # the same examples every run, so the counts below are stable
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
# The distinct generated texts each renderer must show (10,000 in all): a room message costs
# most per text (its frames for each reader, its socket frame), an admin or export page least.
TEXTS_SHOWN = {
    "room message": 1500,
    "notifications page": 1750,
    "notification email": 2250,
    "admin queue item": 2250,
    "data export page": 2250,
}


def clip(text: str, limit: int) -> str:
    return text[:limit]


def detached(instance, **fields):
    """A copy of a model instance with ``fields`` changed, sharing no cache with it."""
    other = copy.copy(instance)
    other._state = copy.copy(instance._state)
    other._state.fields_cache = {}
    for name, value in fields.items():
        setattr(other, name, value)
    return other


def signed_in_request(user, path="/"):
    request = RequestFactory().get(path)
    request.user = user
    return request


# --- The renderers ---------------------------------------------------------------------------
#
# Each renderer holds a real state made through the services and read back through the real
# selectors (in its fixture); each check puts member text into a copy of what the selectors
# returned, where the member's words sit, runs the code that decides on the text
# (``message_payloads`` and ``frame_for_viewer`` for the room), and renders the real template.
# The neutral rendering uses the same data with the member text replaced by its stand-in, so
# every decision the code made about the text (a content note naming a topic, say) stays.
# Neutral renderings that repeat are parsed once. ``shown`` collects the drawn texts each
# renderer really put into its output (whole, or up to the place's length limit), for the
# counts.


class Renderer:
    where = ""

    def __init__(self):
        self._neutral: dict[str, Page] = {}
        self.shown: set[str] = set()

    def show(self, *drawn: str) -> None:
        self.shown.update(text for text in drawn if text)

    def calm(self, data):
        """``data`` with the member text neutral, and a key that names it."""
        raise NotImplementedError

    def html(self, data) -> str:
        raise NotImplementedError

    def check(self, data) -> Page:
        """Render with the hostile text and with its neutral stand-in; compare the two."""
        hostile = parse(self.html(data))
        calm, key = self.calm(data)
        if key not in self._neutral:
            self._neutral[key] = parse(self.html(calm))
        assert_no_markup_from_text(hostile, self._neutral[key], self.where)
        return hostile


class Room(Renderer):
    """Messages and check-ins by Willow, read by Willow, Maple, a reader who softens every
    topic and one who muted Willow: ``message.html`` as the room page includes it, with the
    frame ``groups.views.room`` makes from ``message_payloads`` and ``frame_for_viewer``; and
    the socket frame those give the consumer, compared with its neutral twin's."""

    where = "room message"
    VIEWERS = ("author", "reader", "softener", "muter")
    # kind, viewer, held, topics, which texts are left empty. A message held for a moderator
    # is a placeholder with no words for everyone but its author: it is here once per kind,
    # reader and topics, not once per way of leaving texts empty, so most messages show words
    # (and text messages, which show all three, twice as often as check-ins, which show two).
    OPTIONS = [
        (kind, viewer, held, topics, blank)
        for kind, viewer, held, topics in itertools.product(
            ["text", "text", "checkin"], VIEWERS, [False, True],
            [(), ("grief",), ("self_harm", "violence")],
        )
        for blank in ([(), (), (), (), ("body",), ("note",), ("body", "note")]
                      if viewer == "author" or not held else [()])
    ]  # fmt: skip
    SERVER_ONLY = {"softened_text", "body_html", "created_at", "reaction_buttons"}

    def __init__(self, group, member, facilitator):
        super().__init__()
        self.group, self.author = group, member
        softener = make_member(display_name="Rowan")
        muter = make_member(display_name="Aspen")
        for person in (softener, muter):
            make_membership(group, person)
        group_services.set_content_boundaries(
            softener, actor=softener, topics=list(SensitiveTopic.values)
        )
        Mute.objects.create(user=muter, muted=member)
        self.viewers = {
            "author": member,
            "reader": facilitator,
            "softener": softener,
            "muter": muter,
        }
        group_services.post_message(group, author=member, client_id=uuid.uuid4(), body="hello")
        group_services.record_check_in(
            member, group=group, presence=3, feelings=["calm"], note="steady", audience="group"
        )
        self.messages = {m.kind: m for m in Message.objects.filter(group=group)}

    def _message(self, *, body, note, name, kind, held, topics):
        message = detached(
            self.messages[kind],
            body=clip(body or ("" if kind == "checkin" else "hi"), MESSAGE_MAX_CHARS),
            content_warning="" if kind == "checkin" else clip(note, CONTENT_WARNING_MAX_CHARS),
            topics=list(topics),
            held_at=timezone.now() if held else None,
        )
        message.author = detached(self.author, display_name=clip("N" + name, DISPLAY_NAME_MAX))
        return message

    def check_messages(self, items: list[tuple[dict, tuple]]) -> None:
        """``items``: (texts: body, note, name; an entry of ``OPTIONS``) per message. Each
        message and its neutral twin are read through the selectors together (one query for
        all), then each is rendered and its frame compared."""
        messages = []
        entries = [
            ({k: "" if k in option[4] else v for k, v in texts.items()}, option)
            for texts, option in items
        ]
        for texts, (kind, _viewer, held, topics, _blank) in entries:
            options = {"kind": kind, "held": held, "topics": topics}
            calm_texts = {k: neutral(v) for k, v in texts.items()}
            messages += [self._message(**texts, **options), self._message(**calm_texts, **options)]
        payloads = group_selectors.message_payloads(messages)
        frames = {}  # message index: (its frame, its twin's), made once per reader
        for viewer in {option[1] for _texts, option in entries}:
            indexes = [i for i, (_texts, option) in enumerate(entries) if option[1] == viewer]
            made = _frames(
                [p for i in indexes for p in payloads[2 * i : 2 * i + 2]], self.viewers[viewer]
            )
            frames.update((i, made[2 * n : 2 * n + 2]) for n, i in enumerate(indexes))
        for index, (texts, option) in enumerate(entries):
            frame, twin = frames[index]
            hostile_message = messages[2 * index]
            words = {
                hostile_message.body,
                hostile_message.content_warning,
                hostile_message.author.display_name,
            }
            self.check(frame)
            assert_frame_is_text(
                {k: v for k, v in frame.items() if k not in self.SERVER_ONLY},
                {k: v for k, v in twin.items() if k not in self.SERVER_ONLY},
                words | {""},
                "room socket frame",
            )
            if not (frame["held"] and not frame["own"]):  # a placeholder shows no words
                # A check-in card has no content note.
                self.show(
                    texts["body"], texts["name"], texts["note"] if option[0] == "text" else ""
                )

    def calm(self, frame):
        calm = {
            **frame,
            "body": neutral(frame["body"]),
            "content_warning": neutral(frame["content_warning"]),
            "author": {**frame["author"], "name": neutral(frame["author"]["name"])},
        }
        calm["body_html"] = render_body(calm["body"])
        return calm, repr(sorted(calm.items()))

    def html(self, frame):
        return render_to_string("groups/room/message.html", {"m": frame, "group": self.group})


class NotificationsPage(Renderer):
    """A page of notifications whose titles and bodies carry member text (as moderation's
    notes carry a moderator's reason) on ``community/notifications.html``, under the member's
    own name."""

    where = "notifications page"
    URLS = ["", "/groups/", "/me/notifications/", "https://example.test/a?b=c"]

    def __init__(self, member):
        super().__init__()
        self.member = member
        self.notification = community_services.notify(
            member, kind=NotificationKind.MODERATION_ACTION, title="A note", body="Words"
        )

    def data(self, *, items, name):
        """``items``: (title, body, url) per notification, at most a page of them."""
        assert len(items) <= NOTIFICATIONS_PER_PAGE
        viewer = detached(self.member, display_name=clip("N" + name, DISPLAY_NAME_MAX))
        self.show(name)
        notifications = [
            detached(self.notification, title="Note: " + title, body=body, url=url)
            for title, body, url in items
        ]
        for title, body, _url in items:
            self.show(title, body)
        return viewer, notifications

    def calm(self, data):
        viewer, notifications = data
        calm = [
            detached(n, title=neutral(n.title), body=neutral(n.body, lines=True))
            for n in notifications
        ]
        key = repr([neutral(viewer.display_name)] + [(n.title, n.body, n.url) for n in calm])
        return (detached(viewer, display_name=neutral(viewer.display_name)), calm), key

    def html(self, data):
        viewer, notifications = data
        # What community.selectors.notifications_page hands the view: one page of them.
        page = Paginator(notifications, NOTIFICATIONS_PER_PAGE).get_page(1)
        return render_to_string(
            "community/notifications.html",
            {"page": page},
            request=signed_in_request(viewer, "/me/notifications/"),
        )


class NotificationEmail(NotificationsPage):
    """Notifications as emails (``build_notification_email``: its HTML part), one email each."""

    where = "notification email"

    def data(self, *, title, body, name, url):
        notification = detached(self.notification, title="Note: " + title, body=body, url=url)
        notification.user = detached(self.member, display_name=clip("N" + name, DISPLAY_NAME_MAX))
        self.show(title, body, name)
        return notification

    def calm(self, notification):
        calm = detached(
            notification,
            title=neutral(notification.title),
            body=neutral(notification.body, lines=True),
        )
        calm.user = detached(
            notification.user, display_name=neutral(notification.user.display_name)
        )
        return calm, repr((calm.title, calm.body, calm.url, calm.user.display_name))

    def html(self, notification):
        message = community_services.build_notification_email(notification)
        ((html, mimetype),) = message.alternatives
        assert mimetype == "text/html"
        return html


class AdminQueue(Renderer):
    """A reported message in its context and the member's history, and the member's appeal:
    the moderators' queue item pages (``admin/moderation/queueitem/item.html``) with what
    ``moderation.selectors.item_context`` returns, member text in every place it has: each
    message of the context (as many as a batch brings), the report, the appeal, each entry of
    the history."""

    where = "admin queue item"

    def __init__(self, group, member, facilitator, moderator):
        super().__init__()
        self.moderator = moderator
        post = group_services.post_message
        post(group, author=member, client_id=uuid.uuid4(), body="hi")
        message = post(group, author=member, client_id=uuid.uuid4(), body="hello").message
        report = moderation_services.report_message(
            message, reporter=facilitator, category="other", details="details"
        )
        claimed = moderation_services.claim_item(
            QueueItem.objects.get(report=report), moderator=moderator
        )
        action = moderation_services.warn_member(claimed, actor=moderator, reason="reason")
        appeal = moderation_services.submit_appeal(action, member=member, text="text")
        self.items = {}
        for kind, item in (
            ("report", QueueItem.objects.get(report=report)),
            ("appeal", QueueItem.objects.get(appeal=appeal)),
        ):
            item = moderation_selectors.get_item(item.pk, actor=moderator)
            self.items[kind] = (item, moderation_selectors.item_context(item, actor=moderator))
        self.request = signed_in_request(moderator, "/admin/")
        self.each_context = admin.site.each_context(self.request)

    def data(self, *, messages, details, appeal, report_history, appeal_history):
        """``messages``: (body, note, name) per message of the context; the histories: one
        reason per entry."""
        for body, note, name in messages:
            self.show(body, note, name)
        self.show(details, appeal, *report_history, *appeal_history)
        return {
            "messages": [
                (
                    clip(body or "hi", MESSAGE_MAX_CHARS),  # a text message has words
                    clip(note, CONTENT_WARNING_MAX_CHARS),
                    clip("N" + name, DISPLAY_NAME_MAX),
                )
                for body, note, name in messages
            ],
            "details": clip(details, REPORT_DETAILS_MAX_CHARS),
            "appeal": clip(appeal, APPEAL_MAX_CHARS),
            "report_history": [clip(r, REASON_MAX_CHARS) for r in report_history],
            "appeal_history": [clip(r, REASON_MAX_CHARS) for r in appeal_history],
        }

    def calm(self, data):
        calm = {
            "messages": [tuple(neutral(t) for t in m) for m in data["messages"]],
            "details": neutral(data["details"]),
            "appeal": neutral(data["appeal"]),
            "report_history": [neutral(r) for r in data["report_history"]],
            "appeal_history": [neutral(r) for r in data["appeal_history"]],
        }
        return calm, repr(sorted(calm.items()))

    @staticmethod
    def with_text(kind, context, data):
        """The selectors' context with the member text of ``data``: the context's messages
        repeated (each keeping its flags, with its own seq) for as many as ``data`` has."""
        base = context["messages"]
        history = context["history"][0]
        return {
            **context,
            "messages": [
                {**base[i % len(base)], "seq": i + 1, "body": body,
                 "content_warning": note, "author": name}
                for i, (body, note, name) in enumerate(data["messages"])
            ] if base else [],
            "report": context["report"] and {**context["report"], "details": data["details"]},
            "appeal": context["appeal"] and {**context["appeal"], "text": data["appeal"]},
            "history": [{**history, "reason": r} for r in data[f"{kind}_history"]],
        }  # fmt: skip

    def html(self, data):
        return "\n".join(
            render_to_string(
                "admin/moderation/queueitem/item.html",
                {
                    **self.each_context,
                    "opts": QueueItem._meta,
                    "title": str(item),
                    "item": item,
                    "context": self.with_text(kind, context, data),
                    "actions": [],
                    "mine": False,
                    "claim_url": "/admin/claim/",
                    "release_url": "/admin/release/",
                },
                request=self.request,
            )
            for kind, (item, context) in self.items.items()
        )


class Export(Renderer):
    """The readable page of a member's data export (every section filled through the
    services, read back with ``readable_sections``), with member text in every text cell:
    each section's rows repeated ``ROWS`` times, so one page holds a batch of texts."""

    where = "data export page"
    ROWS = 4

    def __init__(self, group, member, facilitator):
        super().__init__()
        self.member = member
        post = group_services.post_message
        post(group, author=member, client_id=uuid.uuid4(), body="words", content_warning="cw")
        group_services.record_check_in(
            member, group=group, presence=4, feelings=["calm"], note="note", audience="private"
        )
        other = make_group(name="Morning circle", join_policy="approval")
        group_services.join_group(other, user=member, agreement_version=1, message="May I?")
        moderation_services.report_message(
            post(group, author=facilitator, client_id=uuid.uuid4(), body="x").message,
            reporter=member,
            category="other",
            details="details",
        )
        group_services.set_safe_status(member, text="Resting", hours=4)
        group_services.invite_safe_person(member, invitee=facilitator, note="Would you?")
        community_services.notify(member, kind="meeting_changed", title="Moved", body="Friday")
        self.export = community_services.request_data_export(member, actor=member)
        self.token = data_selectors.export_link_token(self.export)
        self.sections = {
            key: rows[:1] * self.ROWS
            for key, rows in self.export.content["sections"].items()
            if rows
        }
        self.text_cells = sum(
            isinstance(value, str) for rows in self.sections.values() for row in rows
            for value in row.values()
        )  # fmt: skip

    def data(self, *, cells, name):
        assert len(cells) <= self.text_cells, "more texts than the page has text cells"
        self.show(*cells, name)
        return cells, clip("N" + name, DISPLAY_NAME_MAX)

    def calm(self, data):
        cells, name = data
        calm = [neutral(c) for c in cells], neutral(name)
        return calm, repr(calm)

    def html(self, data):
        cells, name = data
        texts = itertools.cycle(cells)
        content = {
            "sections": {
                key: [
                    {c: next(texts) if isinstance(v, str) else v for c, v in row.items()}
                    for row in rows
                ]
                for key, rows in self.sections.items()
            }
        }
        return render_to_string(
            "community/my_data_export.html",
            {
                "export": self.export,
                "token": self.token,
                "sections": data_selectors.readable_sections(content),
            },
            request=signed_in_request(detached(self.member, display_name=name), "/me/data/"),
        )


@pytest.fixture
def room(group, member, facilitator):
    return Room(group, member, facilitator)


@pytest.fixture
def notifications_page(member):
    return NotificationsPage(member)


@pytest.fixture
def notification_email(member):
    return NotificationEmail(member)


@pytest.fixture
def admin_queue(group, member, facilitator, moderator):
    return AdminQueue(group, member, facilitator, moderator)


@pytest.fixture
def export(group, member, facilitator):
    return Export(group, member, facilitator)


# --- The check can fail ----------------------------------------------------------------------


class Unsafe(Renderer):
    """A renderer with the mistake the checker is for: the text marked safe."""

    where = "a deliberately unsafe template"
    TEMPLATE = Template('<p class="note">{{ text|safe }}</p><p class="name">{{ name }}</p>')

    def calm(self, data):
        calm = {k: neutral(v) for k, v in data.items()}
        return calm, repr(sorted(calm.items()))

    def html(self, data):
        return self.TEMPLATE.render(Context(data))


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        ("<img src=x onerror=alert(1)>", "outside the allowed set"),  # a new element
        ('<p class="note" title="x">', "outside the allowed set"),  # a new attribute
        ("<p class=note>nested</p>", "changed the markup"),  # allowed parts, in new places
        ("<!-- hidden -->", "changed the markup"),
        ('<a href="javascript:alert(1)" rel="nofollow noopener noreferrer">x</a>', "javascript"),
        (
            '<a href="https://a.test" rel="nofollow noopener noreferrer">elsewhere</a>',
            "its address",
        ),
    ],
)
def test_the_checker_catches_markup_that_text_made(text, caught):
    with pytest.raises(AssertionError, match=caught):
        Unsafe().check({"text": text, "name": "Willow"})
    # The same text, escaped as the real templates do, passes.
    escaped = Unsafe()
    escaped.TEMPLATE = Template('<p class="note">{{ text }}</p><p class="name">{{ name }}</p>')
    escaped.check({"text": text, "name": "Willow"})


def test_the_checker_catches_an_attribute_or_an_unsafe_address():
    neutral_page = parse('<p class="a"><a href="/x">x</a></p>')
    with pytest.raises(AssertionError, match="outside the allowed set"):
        assert_no_markup_from_text(
            parse('<p class="a" onmouseover="alert(1)"><a href="/x">x</a></p>'), neutral_page, "t"
        )
    with pytest.raises(AssertionError, match="javascript"):
        assert_no_markup_from_text(
            parse('<p class="a"><a href=" java\tscript:alert(1)">x</a></p>'), neutral_page, "t"
        )


def test_the_frame_check_catches_markup_or_text_out_of_place():
    calm = {"type": "message", "body": "x", "author": {"name": "x"}, "softened": []}
    texts = {"<b>hi</b>", "Willow"}
    assert_frame_is_text({**calm, "body": "<b>hi</b>"}, calm, texts, "t")  # text is fine
    with pytest.raises(AssertionError, match="html"):
        assert_frame_is_text(
            {**calm, "body_html": "<b>hi</b>"}, {**calm, "body_html": "x"}, texts, "t"
        )
    with pytest.raises(AssertionError, match="member text in"):
        assert_frame_is_text({**calm, "type": "Willow"}, calm, texts, "t")
    with pytest.raises(AssertionError, match="not the member's text"):
        assert_frame_is_text({**calm, "body": "<b>hi</b> rendered"}, calm, texts, "t")
    with pytest.raises(AssertionError, match="changed the frame"):
        assert_frame_is_text({**calm, "extra": "<b>hi</b>"}, calm, texts, "t")


def test_the_script_check_catches_each_way_to_make_markup():
    planted = [
        "node.innerHTML = m.body;",
        "li.insertAdjacentHTML('beforeend', m.body);",
        "document.write(m.body);",
        "eval(frame.code);",
        'button.setAttribute("onclick", m.body);',
        "const node = document.createElement(m.kind);",
        "el(m.tag, 'chat-body', m.body)",
    ]
    for line in planted:
        assert script_problems([("planted.js", line)]), line
    assert not script_problems([("fine.js", 'p.append(el("span", "chat-author", m.author.name));')])


# --- Generated text through each renderer ---------------------------------------------------


def run(test, *, renderer: Renderer, examples: int) -> None:
    """Run the Hypothesis ``test``; then ``renderer`` must have shown its floor of distinct
    texts."""
    settings(HYPOTHESIS, max_examples=examples)(test)()
    floor = TEXTS_SHOWN[renderer.where]
    assert len(renderer.shown) >= floor, (renderer.where, len(renderer.shown), floor)


def test_the_floors_add_up_to_ten_thousand_texts_over_every_renderer():
    assert set(TEXTS_SHOWN) == {
        cls.where for cls in (Room, NotificationsPage, NotificationEmail, AdminQueue, Export)
    }
    assert sum(TEXTS_SHOWN.values()) >= 10_000


@settings(HYPOTHESIS, max_examples=300)
@given(text=texts)
@example(text='see https://example.test/a?b=<c>&d="e". and http://x.test/)')
def test_render_body_keeps_text_as_text_and_makes_only_http_links(text):
    page = parse(str(render_body(text)))
    assert "".join(page.text) == text
    assert page.structure == []  # no element but the links
    for attributes, link_text in page.body_links:
        assert set(attributes) == {"href", "rel"} and attributes["href"] == link_text
        assert re.match(r"https?://", link_text, re.I)


ROOM_MESSAGES = 16  # each with a body, a content note and an author's name


def test_generated_text_in_room_messages_and_their_socket_frames_makes_no_markup(room):
    @given(drawn=items(Room.OPTIONS, 3, ROOM_MESSAGES))
    def test(drawn):
        room.check_messages(
            [({"body": body, "note": note, "name": name}, option)
             for option, body, note, name in drawn]
        )  # fmt: skip

    run(test, renderer=room, examples=55)


def test_generated_text_on_the_notifications_page_makes_no_markup(notifications_page):
    size = NOTIFICATIONS_PER_PAGE

    # Each notification's address, and whether it has a body.
    options = list(itertools.product(NotificationsPage.URLS, [True, True, True, False]))

    @given(drawn=items(options, 2, size))
    def test(drawn):
        notifications = [(title, body if has_body else "", url)
                         for (url, has_body), title, body in drawn]  # fmt: skip
        # The member's own name on the page: the first title, written as a name.
        notifications_page.check(
            notifications_page.data(items=notifications, name=notifications[0][0])
        )

    run(test, renderer=notifications_page, examples=59)


EMAILS = 10


def test_generated_text_in_notification_emails_makes_no_markup(notification_email):
    @given(drawn=items(NotificationsPage.URLS, 3, EMAILS))
    def test(drawn):
        for url, title, body, name in drawn:
            notification_email.check(
                notification_email.data(title=title, body=body, name=name, url=url)
            )

    run(test, renderer=notification_email, examples=88)


CONTEXT, HISTORY = 16, 8


def test_generated_text_on_the_admin_queue_items_makes_no_markup(admin_queue):
    @given(drawn=batch(3 * CONTEXT + 2 + 2 * HISTORY))
    def test(drawn):
        messages = [tuple(drawn[3 * i : 3 * i + 3]) for i in range(CONTEXT)]
        rest = drawn[3 * CONTEXT :]
        admin_queue.check(
            admin_queue.data(
                messages=messages,
                details=rest[0],
                appeal=rest[1],
                report_history=rest[2 : 2 + HISTORY],
                appeal_history=rest[2 + HISTORY :],
            )
        )

    run(test, renderer=admin_queue, examples=40)


def test_generated_text_in_a_data_export_page_makes_no_markup(export):
    size = min(export.text_cells, 80)
    assert size >= 40, export.text_cells

    @given(drawn=batch(size + 1))
    def test(drawn):
        export.check(export.data(cells=drawn[:-1], name=drawn[-1]))

    run(test, renderer=export, examples=32)


# --- The corpus of known payloads -------------------------------------------------------------


def test_the_payload_corpus_is_a_hundred_known_patterns():
    assert len(PAYLOADS) >= 100
    assert len(set(PAYLOADS)) == len(PAYLOADS)


def test_every_known_payload_through_every_renderer_makes_no_markup(
    room, notifications_page, notification_email, admin_queue, export
):
    n = len(PAYLOADS)
    # Every way a message can look where its words show (a held one is a placeholder for
    # others, checked with the generated text).
    shown = [o for o in Room.OPTIONS if not o[4] and not (o[2] and o[1] != "author")]
    room.check_messages(
        [({"body": p, "note": p, "name": p}, shown[i % len(shown)]) for i, p in enumerate(PAYLOADS)]
    )
    urls = NotificationsPage.URLS
    size = NOTIFICATIONS_PER_PAGE
    for start in range(0, n, size):
        page = PAYLOADS[start : start + size]
        items = [(p, p, urls[i % 4]) for i, p in enumerate(page)]
        notifications_page.check(notifications_page.data(items=items, name=page[0]))
    for i, p in enumerate(PAYLOADS):
        notification_email.check(notification_email.data(title=p, body=p, name=p, url=urls[i % 4]))
    for start in range(0, n, CONTEXT):
        page = PAYLOADS[start : start + CONTEXT]
        admin_queue.check(
            admin_queue.data(
                messages=[(p, p, p) for p in page], details=page[0], appeal=page[-1],
                report_history=page, appeal_history=page[::-1],
            )
        )  # fmt: skip
    size = min(export.text_cells, 40)
    for start in range(0, n, size):
        page = PAYLOADS[start : start + size]
        export.check(export.data(cells=page, name=page[0]))
    for renderer in (room, notifications_page, notification_email, admin_queue, export):
        assert set(PAYLOADS) <= renderer.shown, renderer.where  # each as a body or a cell


def batches(payloads: list[str], limit: int) -> list[str]:
    """The payloads one to a line, in as few texts of at most ``limit`` characters as fit."""
    out, current = [], ""
    for payload in payloads:
        if current and len(current) + 1 + len(payload) > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{payload}" if current else payload
    return [*out, current]


def words(text: str) -> str:
    """Without white space: pages collapse it, and ``linebreaksbr`` turns a line break into
    an element."""
    return "".join(text.split())


def assert_shown_as_text(html: str, payloads, where: str) -> None:
    """Every payload is in the page's text (so none became markup), and the page has no event
    handler attribute, no script of its own making and no unsafe URL."""
    page = parse(html)
    text = words("".join(page.text))
    missing = [p for p in payloads if words(p) not in text]
    assert not missing, f"{where}: not shown as text: {missing[:3]}"
    handlers = {(tag, name) for tag, name in page.elements if name.startswith("on")}
    assert not handlers, f"{where}: event handlers {handlers}"
    assert ("iframe", "") not in page.elements and ("object", "") not in page.elements
    assert ("embed", "") not in page.elements and ("base", "") not in page.elements
    assert_safe_urls(page, where)


def test_known_payloads_written_through_the_services_show_as_text_on_every_page(
    client, settings, member, facilitator, moderator, mailoutbox
):
    """End to end: the payloads go in through the services (messages, content notes, a
    check-in note, a display name, a group name, a report, a moderator's reason and the
    notification and email it makes, an appeal, a data export) and come out of the real pages
    as text."""
    settings.ADMIN_REQUIRE_MFA = False
    name = '"><img src=x onerror=alert(1)>'  # display names are at most 40 characters
    group = make_group(name="<svg/onload=alert(1)> circle", slug="payload-circle")
    author = make_member(display_name=name)
    make_membership(group, author)
    make_membership(group, facilitator, role="facilitator")
    notes = [p for p in PAYLOADS if len(p) <= CONTENT_WARNING_MAX_CHARS]
    for i, body in enumerate(batches(PAYLOADS, 1000)):
        message = group_services.post_message(
            group,
            author=author,
            client_id=uuid.uuid4(),
            body=body,
            content_warning=notes[i % len(notes)],
        ).message
    check_in_note = next(p for p in PAYLOADS if "onerror" in p and len(p) <= 140)
    group_services.record_check_in(
        author, group=group, presence=3, feelings=[], note=check_in_note, audience="group"
    )
    details = batches(PAYLOADS, REPORT_DETAILS_MAX_CHARS)[0]
    report = moderation_services.report_message(
        message, reporter=facilitator, category="other", details=details
    )
    item = moderation_services.claim_item(QueueItem.objects.get(report=report), moderator=moderator)
    reason = batches(PAYLOADS, REASON_MAX_CHARS)[1]
    action = moderation_services.warn_member(item, actor=moderator, reason=reason)
    appeal = batches(PAYLOADS, APPEAL_MAX_CHARS)[2]
    appeal_item = QueueItem.objects.get(
        appeal=moderation_services.submit_appeal(action, member=author, text=appeal)
    )
    notification = Notification.objects.get(user=author, kind="moderation_action")
    assert community_services.send_notification_email(notification.pk)
    export = community_services.request_data_export(author, actor=author)

    def page(user, url):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, url
        return response.content.decode()

    shown = batches(PAYLOADS, 1000)
    room_url = reverse("groups:room", args=[group.slug])
    assert_shown_as_text(page(facilitator, room_url), [name, *notes[:5], *shown], "room")
    assert_shown_as_text(page(author, room_url), [check_in_note], "room (own)")
    assert_shown_as_text(
        page(author, reverse("notifications")), [reason, group.name], "notifications"
    )
    assert_shown_as_text(page(author, reverse("moderation:mine")), [reason], "my moderation")
    (email,) = mailoutbox
    ((html, _mimetype),) = email.alternatives
    assert_shown_as_text(html, [reason, name], "email")
    assert words(reason) in words(email.body)
    admin_page = page(moderator, reverse("admin:moderation_queueitem_change", args=[item.pk]))
    assert_shown_as_text(admin_page, [details, reason, name], "admin queue item")
    admin_page = page(
        moderator, reverse("admin:moderation_queueitem_change", args=[appeal_item.pk])
    )
    assert_shown_as_text(admin_page, [appeal], "admin appeal item")
    export_url = reverse("data_export_view", args=[data_selectors.export_link_token(export)])
    assert_shown_as_text(
        page(author, export_url), [name, check_in_note, appeal, details], "data export"
    )


# --- The client: static/js/room*.js draws member text as text --------------------------------

JS = sorted((ROOT / "static" / "js").glob("*.js"))
# Ways a script turns a string into markup or code. None is used: frames are drawn with
# createElement and textContent, so a member's words can't become elements or handlers.
MARKUP_SINKS = re.compile(
    r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write|\beval\s*\(|"
    r"new\s+Function\s*\(|createContextualFragment|DOMParser|\.setHTML(Unsafe)?\s*\(|"
    r"\bsetTimeout\s*\(\s*[\"'`]|\bsetInterval\s*\(\s*[\"'`]|setAttribute\(\s*[\"']on|"
    r"\.on[a-z]+\s*=[^=]|srcdoc"
)
# Creating an element: its tag must be written in the script, never taken from data.
CREATES = re.compile(r"\b(?:el|createElement|createElementNS)\(\s*([^,)]*)")
LITERAL_TAG = re.compile(r"""^["'][a-z][a-z0-9-]*["']$""")
# Where a tag is passed on rather than written: room.js's own el(tag, ...) helper, and the
# API that hands it to the room's other scripts (whose calls are checked in their files).
TAG_PASSED_ON = {
    "function el(tag, className, text) {": "tag",
    "const node = document.createElement(tag);": "tag",
    "room.roomApi = {": "...a",
}


def script_problems(lines: list[tuple[str, str]]) -> list[str]:
    """Each line of script that could make markup from a string, or an element whose tag
    isn't written in the script."""
    found = []
    for where, line in lines:
        if MARKUP_SINKS.search(line):
            found.append(f"{where}: {line.strip()}")
        for match in CREATES.finditer(line):
            argument = match.group(1).strip()
            passed_on = any(
                line.strip().startswith(start) and argument == name
                for start, name in TAG_PASSED_ON.items()
            )
            if not (LITERAL_TAG.match(argument) or passed_on):
                found.append(f"{where}: {line.strip()}")
    return found


def script_lines() -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{number}", line)
        for path in JS
        for number, line in enumerate(path.read_text().splitlines(), 1)
    ]


def test_the_pages_scripts_never_turn_text_into_markup():
    assert any(path.name == "room.js" for path in JS)
    assert script_problems(script_lines()) == []


def test_the_clients_links_are_the_servers_http_links_only():
    """room.js makes a link only from its LINK pattern (the same as render_body's: http(s))
    and only its own rel; every other address it sets is checked or built from its own."""
    room_js = (ROOT / "static" / "js" / "room.js").read_text()
    (pattern,) = re.findall(r"const LINK = /(.+)/gi;", room_js)
    assert pattern.replace("\\/", "/").replace('\\"', '"') == _LINK.pattern.replace('\\"', '"')
    hrefs = [
        line.strip()
        for path in JS
        for line in path.read_text().splitlines()
        if re.search(
            r"\.(href|src|action|formAction)\s*=|setAttribute\(\s*\"(href|src|action)", line
        )
    ]
    assert hrefs == [
        "a.href = match[0];",  # a LINK match: http(s) only
        'form.setAttribute("action", form.getAttribute("action").replace(/\\/0\\/report\\/$/, `/${seq}/report/`));',
        'form.setAttribute("action", form.getAttribute("action").replace(/\\/0\\/person\\/$/, `/${m.seq}/person/`));',
        "link.href = r.url;",  # a crisis resource's URL, after /^https?:\/\// is checked
    ], hrefs
