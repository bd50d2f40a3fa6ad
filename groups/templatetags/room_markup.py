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
"""

from __future__ import annotations

import functools

from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from groups.models import MessageKind, ReactionKind

register = template.Library()

# The report form and the mute/block menu under each message differ only in the message's seq
# and its author's name, so their templates are rendered once per page with these marks in
# those places and stamped for each message (room.js does the same with the page's seq-0 copies).
_SEQ_MARK = "918273645546372819"  # a seq the URLs accept; nothing else in that markup holds it
_NAME_MARK = "\ue000name\ue000"  # private-use characters, which escaping leaves as they are


class MessageControls:
    """The report form and the mute/block menu of any message in the room, as
    ``groups/room/report.html`` and ``groups/room/person_menu.html`` draw them, rendered in
    ``context`` (the page's: its ``group`` and its ``csrf_token``)."""

    def __init__(self, context):
        values = {
            "slug": context["group"].slug,
            "seq": _SEQ_MARK,
            "name": _NAME_MARK,  # goes through autoescaping only, as every name there does
            "csrf_token": context.get("csrf_token"),
        }
        engine = context.template.engine
        report = engine.get_template("groups/room/report.html").render(context.new(values))
        person = engine.get_template("groups/room/person_menu.html").render(context.new(values))
        self._report, self._person = report.split(_SEQ_MARK), person.split(_SEQ_MARK)

    @classmethod
    def of_page(cls, context) -> MessageControls:
        """The page's own, rendered on first use and kept for the rest of the page."""
        controls = context.render_context.get(cls)
        if controls is None:
            controls = context.render_context[cls] = cls(context)
        return controls

    def report(self, *, seq: int) -> str:
        return str(seq).join(self._report)

    def person(self, *, seq: int, name: str) -> str:
        return str(seq).join(self._person).replace(_NAME_MARK, escape(name))

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
            "name": escape(m["author"]["name"]),
            "label": escape(check_in["presence_label"].lower()),
        }
        out.append(
            '<p class="chat-checkin-presence"><span class="chat-checkin-tag">'
            f"{labels['check_in']}</span> {line}</p>"
        )
    out.append("\n  ")
    if check_in.get("feelings"):
        words = "".join(f"<li>{escape(word)}</li>" for word in check_in["feelings"])
        out.append(
            f'<ul class="chat-checkin-feelings" aria-label="{labels["feelings"]}">{words}</ul>'
        )
    out.append("\n  ")
    if m["body"] and m["softened"]:  # its note touches a topic this reader softens
        out.append(
            f'\n  <details class="chat-soft" id="msg-{m["seq"]}-soft"><summary>'
            f'{escape(m["softened_text"])} <span class="chat-cw-hint">{labels["open"]}</span>'
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
            f'{escape(m["softened_text"])} <span class="chat-cw-hint">{labels["open"]}</span>'
            f'</summary>\n        <p class="chat-body">{body}</p>\n      </details>\n    '
        )
    if m["content_warning"] and not m["folded"]:  # its note names a topic not softened here
        return (
            f'\n      <p class="chat-cw-label">{labels["note"]} {escape(m["content_warning"])}'
            f'</p>\n      <p class="chat-body">{body}</p>\n    '
        )
    if m["content_warning"]:
        return (
            f'\n      <details class="chat-cw">\n        <summary>{labels["note"]} '
            f'{escape(m["content_warning"])} <span class="chat-cw-hint">{labels["open_note"]}'
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


def _message(m: dict, labels: dict, controls: MessageControls) -> str:
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
    created = timezone.localtime(m["created_at"])
    edited = f'<span class="chat-edited">{labels["edited"]}</span>' if m["edited"] else ""
    out.append(
        f'\n  <p class="chat-meta">\n    <span class="chat-author">{escape(m["author"]["name"])}'
        f'</span>\n    <time datetime="{escape(m["created"])}">{created:%H:%M}</time>\n    '
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
    return mark_safe("".join(_message(m, labels, controls) for m in frames))  # noqa: S308 -- member text escaped above


@register.simple_tag(takes_context=True)
def room_message(context, m) -> SafeString:
    """One message ``m`` in ``context``'s room (its ``group``)."""
    controls = MessageControls.of_page(context)
    return mark_safe(_message(m, _labels(get_language()), controls))  # noqa: S308 -- member text escaped above


@register.simple_tag(takes_context=True)
def room_report_form(context) -> SafeString:
    """The report form for live messages to copy (seq 0; static/js/room.js puts in theirs)."""
    return mark_safe(MessageControls.of_page(context).report(seq=0))  # noqa: S308 -- rendered by its template


@register.simple_tag(takes_context=True)
def room_person_menu(context) -> SafeString:
    """The mute/block menu for live messages to copy (seq 0, name "{name}": room.js puts in
    theirs)."""
    return mark_safe(MessageControls.of_page(context).person(seq=0, name="{name}"))  # noqa: S308 -- rendered by its template, the name escaped
