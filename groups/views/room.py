"""The chat room page and its older-history pages. The live part is groups.consumers."""

from __future__ import annotations

import html
import re
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from community.errors import DomainError, NotFound
from groups import selectors, services
from groups.models import (
    CONTENT_WARNING_MAX_CHARS,
    MESSAGE_MAX_CHARS,
    ROUND_PROMPT_MAX_CHARS,
    GroupKind,
    ReactionKind,
)
from groups.views import checkins

# http(s) links only; trailing punctuation stays text ("see https://example.test." ends at test).
_LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def render_body(text: str) -> SafeString:
    """Plain text as HTML: everything escaped, http(s) links clickable, nothing else.

    Line breaks are kept by CSS (``white-space: pre-wrap``), so the text is not reflowed.
    ``html.escape`` is what Django's ``escape`` and ``format_html`` do to text, without their
    checks for lazy strings: this runs for every message of every room page.
    """
    parts, last = [], 0
    for match in _LINK.finditer(text):
        parts.append(html.escape(text[last : match.start()]))
        url = html.escape(match.group(0))
        parts.append(f'<a href="{url}" rel="nofollow noopener noreferrer">{url}</a>')
        last = match.end()
    parts.append(html.escape(text[last:]))
    return mark_safe("".join(parts))  # noqa: S308 -- every piece above is escaped


def _frames(payloads: list[dict], user) -> list[dict]:
    """``payloads`` as the page draws them for ``user``: the frames ``selectors.room_page``
    makes from the database, made from given payloads (``tests/community/test_injection.py``
    sends generated text through here)."""
    soften = selectors.content_boundaries(user)
    muted, _blocked_by = selectors.mutes_and_blockers(user.pk)
    return [
        _with_markup(
            selectors.frame_for_viewer(payload, viewer_id=user.pk, soften=soften, muted=muted)
        )
        for payload in payloads
    ]


def _with_markup(frame: dict) -> dict:
    """A frame as the socket would send it, plus what the server-side markup needs
    (``groups/templatetags/room_markup.py``)."""
    frame["softened_text"] = _softened_text(frame["softened"])
    frame["body_html"] = render_body(frame["body"])
    frame["created_at"] = datetime.fromisoformat(frame["created"])
    return frame


def _softened_text(softened: list[dict]) -> str:
    """ "A message about grief and loss" for a folded message (static/js/room.js says the same)."""
    if not softened:
        return ""
    return _("A message about %(topics)s") % {
        "topics": ", ".join(topic["phrase"] for topic in softened)
    }


def _membership_or_refusal(request, slug):
    try:
        return selectors.access_room(slug, request.user), None
    except NotFound as error:
        raise Http404(error.message) from error
    except DomainError as error:
        return None, error


@login_required
@require_GET
def room(request, slug):
    membership, refusal = _membership_or_refusal(request, slug)
    if refusal is not None:
        return render(request, "groups/room/refusal.html", {"message": refusal.message}, status=403)
    if membership.group.kind == GroupKind.PAIR:  # a safe-person room has its own page
        return redirect("groups:safe_person_room", slug=slug)
    if membership.group.kind == GroupKind.PRACTICE:  # so has a practice space (companion)
        return redirect("companion:practice")
    return render(request, "groups/room.html", room_context(request, membership))


def room_context(request, membership) -> dict:
    """What ``groups/room.html`` needs for ``membership``'s room (a circle's, or a pair's with
    ``groups.views.connections`` adding its own, or a practice space's with ``companion.views``
    adding its own). Precondition: the membership was authorised for this request
    (``selectors.access_room``, ``access_pair_room`` or the practice page's own check)."""
    group = membership.group
    is_pair = group.kind == GroupKind.PAIR
    is_circle = group.kind == GroupKind.CIRCLE
    # The room's position is read with the messages: everything up to it is committed, so the
    # page plus a resume from it (after = max(seq, newest shown), since = rev) misses no
    # message or change.
    page = selectors.room_page(membership, request.user)
    position, has_more = page.position, page.has_more
    messages = [_with_markup(frame) for frame in page.frames]
    config = {
        "wsPath": f"/ws/groups/{group.slug}/",
        "historyUrl": reverse("groups:room_history", kwargs={"slug": group.slug}),
        "latestSeq": max([position.seq, *(m["seq"] for m in messages)]),
        "latestRev": position.rev,
        "oldestSeq": messages[0]["seq"] if messages else None,
        "hasMore": has_more,
        "maxChars": MESSAGE_MAX_CHARS,
        "reactions": [{"value": v, "label": str(label)} for v, label in ReactionKind.choices],
    }
    return {
        "group": group,
        "membership": membership,
        # Not "messages": base.html shows the messages framework's notices under that name.
        "room_messages": messages,
        "has_more": has_more,
        "config": config,
        "reactions": ReactionKind.choices,
        "max_chars": MESSAGE_MAX_CHARS,
        "cw_max_chars": CONTENT_WARNING_MAX_CHARS,
        "round_prompt_max_chars": ROUND_PROMPT_MAX_CHARS,
        "refusal": services.posting_refusal(membership),
        # A pair room has no check-ins to a group and no rounds: those are circle things.
        "is_pair": is_pair,
        "is_circle": is_circle,
        "is_practice": group.kind == GroupKind.PRACTICE,
        **(checkins.room_context(request, membership) if is_circle else {}),
    }


@login_required
@require_GET
def room_history(request, slug):
    """One older page of the room as JSON: ``?before=<seq>``; the client renders it as text."""
    membership, refusal = _membership_or_refusal(request, slug)
    if refusal is not None:
        return JsonResponse({"error": refusal.code, "message": refusal.message}, status=403)
    before = request.GET.get("before", "")
    if not before.isdigit():
        return JsonResponse(
            {"error": "bad_request", "message": _("Which page? 'before' needs a seq number.")},
            status=400,
        )
    payloads, has_more = selectors.messages_before(membership, before=int(before))
    soften = selectors.content_boundaries(request.user)
    muted, _blocked_by = selectors.mutes_and_blockers(request.user.pk)
    frames = [
        selectors.frame_for_viewer(p, viewer_id=request.user.pk, soften=soften, muted=muted)
        for p in payloads
    ]
    return JsonResponse({"messages": frames, "has_more": has_more})


urlpatterns = [
    path("groups/<slug:slug>/room/", room, name="room"),
    path("groups/<slug:slug>/room/history/", room_history, name="room_history"),
]
