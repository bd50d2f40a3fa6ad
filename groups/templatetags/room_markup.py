"""The room's messages as HTML: ``{% room_message_list room_messages %}`` for the room page's
first screenful (up to 50 messages), ``{% room_message m %}`` for one (``groups/room/message.html``).

Drawn here in Python rather than by a template per message: through the template engine each
message cost about half a millisecond (its report form and mute/block menu most of that), the
larger part of the room page's server time; here it costs a few tens of microseconds.
static/js/room.js builds the same markup for live messages (a change here is a change there),
and the whitespace is what the templates drew, so the page is byte for byte what it was.

``m`` is a frame as ``groups.views.room`` prepares it (``frame_for_viewer`` plus ``body_html``,
``softened_text`` and ``created_at``). Every piece of member text is escaped here; ``body_html``
arrives escaped by ``render_body``.

The page around the messages is mostly the same for every reader: ``{% fixed %}`` draws such a
part once and reuses it, ``{% live %}`` marks the places in it drawn for each page (below).
"""

from __future__ import annotations

import functools
import re
from html import escape as _escape  # as Django's escape, without its laziness checks: hot here

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.base import token_kwargs
from django.template.context import Context
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from groups.models import MessageKind, ReactionKind

register = template.Library()

# The report form and the mute/block menu under each message differ only in the room's slug, the
# page's CSRF token, the message's seq and its author's name, so their templates are rendered
# once per process and language with these marks in those places, and stamped for each page and
# message (room.js does the same with the page's seq-0 copies).
_SEQ_MARK = "918273645546372819"  # a seq the URLs accept; nothing else in that markup holds it
_NAME_MARK = "\ue000name\ue000"  # private-use characters, which escaping leaves as they are
_SLUG_MARK = "slug-mark-5e0b2c7d9a"  # a slug the URLs accept, as it is in them
_TOKEN_MARK = "tokenmark5e0b2c7d9a"  # noqa: S105 -- a mark, like a CSRF token: letters and digits
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")  # what the URLs' <slug:…> accepts: reversed as it is


@functools.lru_cache(maxsize=32)
def _control_templates(engine, language, prefix, autoescape, token) -> tuple[str, str]:
    """``groups/room/report.html`` and ``groups/room/person_menu.html`` with the marks in, in the
    active ``language`` (and URL ``prefix``): the same for every room and reader. ``token`` is the
    mark, or the page's missing token as ``{% csrf_token %}`` sees it ("" or "NOTPROVIDED")."""
    values = {"slug": _SLUG_MARK, "seq": _SEQ_MARK, "name": _NAME_MARK, "csrf_token": token}
    return tuple(
        engine.get_template(name).render(Context(values, autoescape=autoescape))
        for name in ("groups/room/report.html", "groups/room/person_menu.html")
    )


class MessageControls:
    """The report form and the mute/block menu of any message in the room, as
    ``groups/room/report.html`` and ``groups/room/person_menu.html`` draw them, for ``context``
    (the page's: its ``group`` and its ``csrf_token``)."""

    def __init__(self, context):
        slug, token = context["group"].slug, context.get("csrf_token")
        token = str(token) if token else ""
        real_token = token not in ("", "NOTPROVIDED")
        if _SLUG.fullmatch(slug):
            report, person = _control_templates(
                context.template.engine,
                get_language(),
                get_script_prefix(),
                context.autoescape,
                _TOKEN_MARK if real_token else token,
            )
            stamp = {_SLUG_MARK: slug, _TOKEN_MARK: str(escape(token))}
            report, person = (
                re.sub(f"{_SLUG_MARK}|{_TOKEN_MARK}", lambda m: stamp[m.group(0)], text)
                for text in (report, person)
            )
        else:  # no URL takes it: let the templates say so, as they would
            values = {"slug": slug, "seq": _SEQ_MARK, "name": _NAME_MARK, "csrf_token": token}
            engine = context.template.engine
            report, person = (
                engine.get_template(name).render(context.new(values))
                for name in ("groups/room/report.html", "groups/room/person_menu.html")
            )
        self._report, self._person = report.split(_SEQ_MARK), person.split(_SEQ_MARK)

    @classmethod
    def of_page(cls, context) -> MessageControls:
        """The page's own, made on first use and kept for the rest of the page."""
        controls = context.render_context.get(cls)
        if controls is None:
            controls = context.render_context[cls] = cls(context)
        return controls

    def report(self, *, seq: int) -> str:
        return str(seq).join(self._report)

    def person(self, *, seq: int, name: str) -> str:
        return str(seq).join(self._person).replace(_NAME_MARK, _escape(name))

    def html(self, *, seq: int, name: str) -> str:
        """Both, as ``message.html`` put them: a line break and six spaces between."""
        return f"{self.report(seq=seq)}\n      {self.person(seq=seq, name=name)}"


@functools.lru_cache(maxsize=16)
def _labels(language: str | None) -> dict[str, str]:
    """The words every message may show, translated (into ``language``, the active one) and
    escaped as ``{% translate %}`` leaves them: once per process and language."""
    words = {
        "muted": _("A message from someone you muted"),
        "open": _("— open to read"),
        "edited": _("edited"),
        "deleted": _("This message was deleted."),
        "hidden": _("The moderators have hidden this message."),
        "wave": _("waves hello to the room."),
        "held": _("Waiting for a moderator: only you can see this for now."),
        "note": _("Content note:"),
        "open_note": _("(open to read)"),
        "reactions": _("Reactions"),
        "edit": _("Edit"),
        "delete": _("Delete"),
        "check_in": _("Check-in"),
        "feelings": _("Feeling words"),
    }
    labels = {key: str(escape(value)) for key, value in words.items()}
    # Not escaped: the names in it are, when it is filled in ({% blocktranslate %}).
    labels["is"] = _("%(name)s is %(label)s")
    labels["kinds"] = {value: str(escape(label)) for value, label in ReactionKind.choices}
    return labels


_KIND_CLASS = {
    MessageKind.WAVE: " chat-item-wave",
    MessageKind.CHECK_IN: " chat-item-checkin",
    MessageKind.COMPANION: " chat-item-companion",
}


def _check_in_card(m: dict, labels: dict) -> str:
    check_in = m.get("check_in") or {}
    out = ['\n<div class="chat-checkin">\n  ']
    if check_in:
        line = labels["is"] % {
            "name": _escape(m["author"]["name"]),
            "label": _escape(check_in["presence_label"].lower()),
        }
        out.append(
            '<p class="chat-checkin-presence"><span class="chat-checkin-tag">'
            f"{labels['check_in']}</span> {line}</p>"
        )
    out.append("\n  ")
    if check_in.get("feelings"):
        words = "".join(f"<li>{_escape(word)}</li>" for word in check_in["feelings"])
        out.append(
            f'<ul class="chat-checkin-feelings" aria-label="{labels["feelings"]}">{words}</ul>'
        )
    out.append("\n  ")
    if m["body"] and m["softened"]:  # its note touches a topic this reader softens
        out.append(
            f'\n  <details class="chat-soft" id="msg-{m["seq"]}-soft"><summary>'
            f'{_escape(m["softened_text"])} <span class="chat-cw-hint">{labels["open"]}</span>'
            f'</summary><p class="chat-body chat-checkin-note">{m["body_html"]}</p></details>\n  '
        )
    elif m["body"]:
        out.append(f'<p class="chat-body chat-checkin-note">{m["body_html"]}</p>')
    out.append("\n</div>\n")
    return "".join(out)


def _words(m: dict, labels: dict) -> str:
    """What a shown text or check-in message says, folded as this reader needs it."""
    seq, body = m["seq"], m["body_html"]
    if m["kind"] == MessageKind.CHECK_IN:
        return f"\n      {_check_in_card(m, labels)}\n    "
    if m["softened"] and not m["content_warning"]:  # a topic this reader asked to have softened
        return (
            f'\n      <details class="chat-soft" id="msg-{seq}-soft">\n        <summary>'
            f'{_escape(m["softened_text"])} <span class="chat-cw-hint">{labels["open"]}</span>'
            f'</summary>\n        <p class="chat-body">{body}</p>\n      </details>\n    '
        )
    if m["content_warning"] and not m["folded"]:  # its note names a topic not softened here
        return (
            f'\n      <p class="chat-cw-label">{labels["note"]} {_escape(m["content_warning"])}'
            f'</p>\n      <p class="chat-body">{body}</p>\n    '
        )
    if m["content_warning"]:
        return (
            f'\n      <details class="chat-cw">\n        <summary>{labels["note"]} '
            f'{_escape(m["content_warning"])} <span class="chat-cw-hint">{labels["open_note"]}'
            f'</span></summary>\n        <p class="chat-body">{body}</p>\n      </details>\n    '
        )
    return f'\n      <p class="chat-body">{body}</p>\n    '


def _reactions(m: dict, labels: dict) -> str:
    counts, mine = m["reactions"], m["my_reactions"]
    out = []
    for value, label in labels["kinds"].items():
        count = counts.get(value, 0)
        shown = f' <span class="chat-count">{count}</span>' if count else ""
        out.append(
            f'\n        <button type="button" class="chat-reaction" data-reaction="{value}" '
            f'aria-pressed="{"true" if value in mine else "false"}">{label}{shown}</button>\n      '
        )
    return "".join(out)


def _message(m: dict, labels: dict, controls: MessageControls, zone) -> str:
    seq, own, muted = m["seq"], m["own"], m.get("muted_author")
    placeholder = m["held"] and not own  # held for a moderator: an empty place, no gap in seq
    out = [
        f'\n<li class="chat-item{_KIND_CLASS.get(m["kind"], "")}'
        f'{" chat-item-softened" if m["softened"] else ""}{" chat-item-muted" if muted else ""}"'
        f' id="msg-{seq}" data-seq="{seq}"{" hidden" if placeholder else ""}>\n  '
    ]
    if muted:  # someone this reader muted: folded for them alone, opened on a tap
        out.append(
            f'\n  <details class="chat-muted" id="msg-{seq}-muted">\n    <summary>'
            f'{labels["muted"]} <span class="chat-cw-hint">{labels["open"]}</span></summary>\n  '
        )
    created = timezone.localtime(m["created_at"], zone)
    edited = f'<span class="chat-edited">{labels["edited"]}</span>' if m["edited"] else ""
    out.append(
        f'\n  <p class="chat-meta">\n    <span class="chat-author">{_escape(m["author"]["name"])}'
        f'</span>\n    <time datetime="{_escape(m["created"])}">{created:%H:%M}</time>\n    '
        f"{edited}\n  </p>\n  "
    )
    if placeholder:
        out.append("\n  ")
    elif m["deleted"]:
        out.append(f'\n    <p class="chat-gone">{labels["deleted"]}</p>\n  ')
    elif m["hidden"]:
        out.append(f'\n    <p class="chat-gone">{labels["hidden"]}</p>\n  ')
    elif m["kind"] == MessageKind.WAVE:
        out.append(f'\n    <p class="chat-wave">{labels["wave"]}</p>\n  ')
    elif m["kind"] == MessageKind.COMPANION:  # the companion: words only, nothing to react to
        out.append(f'\n    <p class="chat-body">{m["body_html"]}</p>\n  ')
    else:
        held = f'<p class="chat-held">{labels["held"]}</p>' if m["held"] else ""
        out.append(
            f"\n    {held}\n    {_words(m, labels)}\n"
            f'    <div class="chat-reactions" role="group" aria-label="{labels["reactions"]}">\n'
            f"      {_reactions(m, labels)}\n    </div>\n    "
        )
        if not own:
            out.append(controls.html(seq=seq, name=m["author"]["name"]))
        out.append("\n    ")
        if own:
            edit = (
                f'<button type="button" class="link-button chat-edit">{labels["edit"]}</button>'
                if m["kind"] != MessageKind.CHECK_IN
                else ""
            )
            out.append(
                f'\n      <div class="chat-own">\n        {edit}\n        <button type="button" '
                f'class="link-button chat-delete">{labels["delete"]}</button>\n      </div>\n    '
            )
        out.append("\n  ")
    out.append(f"\n  {'</details>' if muted else ''}\n</li>\n")
    return "".join(out)


@register.simple_tag(takes_context=True)
def room_message_list(context, frames) -> SafeString:
    """Every message of ``frames``, oldest first, as ``room_message`` draws each."""
    if not frames:
        return mark_safe("")
    labels, controls = _labels(get_language()), MessageControls.of_page(context)
    zone = timezone.get_current_timezone()
    return mark_safe("".join(_message(m, labels, controls, zone) for m in frames))  # noqa: S308 -- member text escaped above


@register.simple_tag(takes_context=True)
def room_message(context, m) -> SafeString:
    """One message ``m`` in ``context``'s room (its ``group``)."""
    controls = MessageControls.of_page(context)
    zone = timezone.get_current_timezone()
    return mark_safe(_message(m, _labels(get_language()), controls, zone))  # noqa: S308 -- member text escaped above


@register.simple_tag(takes_context=True)
def room_report_form(context) -> SafeString:
    """The report form for live messages to copy (seq 0; static/js/room.js puts in theirs)."""
    return mark_safe(MessageControls.of_page(context).report(seq=0))  # noqa: S308 -- rendered by its template


@register.simple_tag(takes_context=True)
def room_person_menu(context) -> SafeString:
    """The mute/block menu for live messages to copy (seq 0, name "{name}": room.js puts in
    theirs)."""
    return mark_safe(MessageControls.of_page(context).person(seq=0, name="{name}"))  # noqa: S308 -- rendered by its template, the name escaped


# --- The page around the messages ---------------------------------------------------------------
#
# Most of the room page is the same for every reader: about a hundred and fifty translated
# labels, the round panel, the check-in dialog's choices, the step-away screen. Through the
# template engine that was most of the page's rendering time, drawn anew for every reader.
# ``{% fixed %}`` draws such a part once per process, language and set of arguments, and
# ``{% live %}`` marks the places inside it drawn for each page.


class NotFixedError(Exception):
    """A ``{% fixed %}`` block read something that isn't one of its arguments: that part
    differs between pages and belongs in a ``{% live %}`` hole (or the value in the arguments).
    Not a silent variable failure, so the page fails instead of drawing a blank."""


class _FixedContext(Context):
    """What a ``{% fixed %}`` block is drawn in: its arguments and nothing else."""

    def __init__(self, values, *, page):
        super().__init__(
            values, autoescape=page.autoescape, use_l10n=page.use_l10n, use_tz=page.use_tz
        )
        self.template, self.template_name = page.template, page.template_name
        self.holes: list[LiveNode] = []

    def __getitem__(self, key):
        for values in reversed(self.dicts):
            if key in values:
                return values[key]
        raise NotFixedError(
            f"{{% fixed %}} has no argument {key!r}: pass it, or make it {{% live %}}"
        )

    def get(self, key, otherwise=None):
        return self[key]  # no default either: {% csrf_token %} reads this way, and must not blank

    def hole(self, node: LiveNode) -> str:
        if node in self.holes:  # in a loop: it would lose the loop's variables
            raise template.TemplateSyntaxError("{% live %} can't be inside a loop of {% fixed %}")
        self.holes.append(node)
        return f"\ue001{len(self.holes) - 1}\ue002"


_HOLE = re.compile("\ue001([0-9]+)\ue002")

# Bumped when a test changes settings (``override_settings``): what was drawn before (static
# and URL addresses, say) is drawn again.
_settings_version = [0]


@receiver(setting_changed)
def _forget_drawn_parts(**kwargs) -> None:
    _settings_version[0] += 1
    _control_templates.cache_clear()


def _frozen(value):
    """``value`` as part of a memo key: plain data only, lazy translations as their text."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Promise):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return (type(value), value)
    raise TypeError(f"{{% fixed %}} arguments are plain values, not {type(value).__name__}")


class FixedNode(template.Node):
    """``{% fixed %}``: its text is kept per language, URL prefix, autoescaping and argument
    values (and settings, which only tests change), as text pieces and the ``{% live %}``
    holes between them."""

    MAX_VERSIONS = 64  # arguments take a few values each; a bound, should one ever not

    def __init__(self, nodelist, arguments):
        self.nodelist, self.arguments = nodelist, arguments
        self.versions: dict[tuple, tuple] = {}

    def render(self, context):
        values = {name: value.resolve(context) for name, value in self.arguments.items()}
        key = (
            _settings_version[0],
            get_language(),
            get_script_prefix(),
            context.autoescape,
            tuple((name, _frozen(value)) for name, value in values.items()),
        )
        pieces = self.versions.get(key)
        if pieces is None:
            pieces = self._draw(values, context)
            if len(self.versions) >= self.MAX_VERSIONS:
                self.versions.clear()
            self.versions[key] = pieces
        return SafeString(
            "".join(p if isinstance(p, str) else p.nodelist.render(context) for p in pieces)
        )

    def _draw(self, values, context) -> tuple:
        """The block drawn in its arguments alone, as text pieces and the live holes between."""
        fixed = _FixedContext(values, page=context)
        parts = _HOLE.split(self.nodelist.render(fixed))
        if len(parts) != 2 * len(fixed.holes) + 1:
            raise template.TemplateSyntaxError("a {% live %} hole of {% fixed %} went missing")
        return tuple(
            str(part) if i % 2 == 0 else fixed.holes[int(part)] for i, part in enumerate(parts)
        )


class LiveNode(template.Node):
    def __init__(self, nodelist):
        self.nodelist = nodelist

    def render(self, context):
        if isinstance(context, _FixedContext):
            return context.hole(self)
        return self.nodelist.render(context)


@register.tag
def fixed(parser, token):
    """``{% fixed name=value … %}…{% endfixed %}``: a part of the page that is the same for
    every reader, drawn once per process, language and set of argument values and reused.

    Inside, only the arguments can be read (plain values: strings, numbers, booleans, None and
    lists of them; reading anything else is an error); ``{% live %}…{% endlive %}`` marks a
    place drawn for each page in the page's own context (not inside a loop of the block)."""
    bits = token.split_contents()[1:]
    arguments = token_kwargs(bits, parser)
    if bits:
        raise template.TemplateSyntaxError("{% fixed %} takes name=value arguments only")
    nodelist = parser.parse(("endfixed",))
    parser.delete_first_token()
    return FixedNode(nodelist, arguments)


@register.tag
def live(parser, token):
    """``{% live %}…{% endlive %}``: drawn for each page, inside a ``{% fixed %}`` block (and
    simply drawn anywhere else)."""
    if len(token.split_contents()) != 1:
        raise template.TemplateSyntaxError("{% live %} takes no arguments")
    nodelist = parser.parse(("endlive",))
    parser.delete_first_token()
    return LiveNode(nodelist)
