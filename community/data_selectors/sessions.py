"""A member's signed-in sessions (allauth.usersessions), described for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from community.models import User
from community.services.retention import PURGED_IP

__all__ = ["SessionView", "describe_user_agent", "my_sessions"]


_BROWSERS = (
    # Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/")),
    ("Safari", re.compile(r"\bSafari/")),
)
_SYSTEMS = (
    ("iPad", re.compile(r"\biPad\b")),
    ("iPhone", re.compile(r"\biPhone\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def describe_user_agent(user_agent: str) -> str:
    """A short, human "Firefox on Windows" for a browser's User-Agent header."""
    user_agent = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    if browser or system:
        return browser or system
    return _("An unknown browser or app")


def _short_ip(ip: str | None) -> str:
    """The first half of an address ("203.0.113.x", "2001:db8:…"): enough to recognise a
    place, not to pin one down. Nothing for an address purged after the retention period."""
    if not ip or ip == PURGED_IP:
        return ""
    if ":" in ip:
        return ":".join(ip.split(":")[:2]) + ":…"
    parts = ip.split(".")
    return ".".join([*parts[:3], "x"]) if len(parts) == 4 else ""


@dataclass(frozen=True)
class SessionView:
    id: int
    device: str
    place: str
    signed_in: datetime
    last_active: datetime
    is_current: bool


def my_sessions(user: User, *, current_session_key: str | None) -> list[SessionView]:
    """The member's signed-in sessions that still exist, the current one first, then the most
    recently active. Sessions that ended or expired are tidied away on the way (allauth's
    ``purge_and_list``)."""
    from allauth.usersessions.models import UserSession

    sessions = UserSession.objects.purge_and_list(user)
    views = [
        SessionView(
            id=s.pk,
            device=describe_user_agent(s.user_agent),
            place=_short_ip(s.ip),
            signed_in=s.created_at,
            last_active=s.last_seen_at,
            is_current=bool(current_session_key) and s.session_key == current_session_key,
        )
        for s in sessions
    ]
    return sorted(views, key=lambda v: (not v.is_current, -v.last_active.timestamp()))
