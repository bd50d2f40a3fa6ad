"""The optional generative backend: any OpenAI-compatible chat-completions endpoint.

Off unless ``COMPANION_API_BASE`` and ``COMPANION_MODEL`` are set (docs/companion.md). When on,
``generate`` sends ``POST {COMPANION_API_BASE}/chat/completions`` with the fixed system prompt
(``companion/flows/common.toml``), the member's display name inside it, and the conversation
the caller chose (only the member's own words and the companion's replies that name nobody
else: ``companion.selectors.model_history``). It waits at most ``COMPANION_TIMEOUT`` seconds
per connect and per read, and raises ``BackendError`` for anything but a usable answer: down,
slow, an HTTP error, or garbage. The caller then says the built-in reply instead.

The standard library's HTTP client, so the backend adds no dependency. Nothing of the request
or the answer is logged: both hold the member's words.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from companion.flows import load_flows

__all__ = ["BackendError", "BackendStatus", "backend_status", "generate", "generative_enabled"]

logger = logging.getLogger(__name__)

# A reply is a few sentences: the model is asked for no more than this many tokens.
MAX_TOKENS = 200
# An answer bigger than this is not a chat reply; it is not read further.
MAX_RESPONSE_BYTES = 64 * 1024
# The wait is capped well inside Celery's soft time limit (60 s, settings), so a long setting
# still ends in the built-in reply rather than in a killed task.
MAX_TIMEOUT_SECONDS = 40.0


class BackendError(Exception):
    """The model gave no usable reply. ``code`` says why (for logs and tests, never words)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class BackendStatus:
    """What the admin shows: whether a model is configured, which, and where (host only)."""

    enabled: bool
    model: str = ""
    host: str = ""
    timeout: float = 0.0


def _base() -> str:
    return (getattr(settings, "COMPANION_API_BASE", "") or "").rstrip("/")


def generative_enabled() -> bool:
    """Is a generative model configured (an http(s) base address and a model name)?"""
    base = _base()
    return bool(base and getattr(settings, "COMPANION_MODEL", "")) and urlsplit(base).scheme in (
        "http",
        "https",
    )


def _timeout() -> float:
    return min(float(getattr(settings, "COMPANION_TIMEOUT", 15)), MAX_TIMEOUT_SECONDS)


def backend_status() -> BackendStatus:
    if not generative_enabled():
        return BackendStatus(enabled=False)
    return BackendStatus(
        enabled=True,
        model=settings.COMPANION_MODEL,
        host=urlsplit(_base()).netloc.rsplit("@", 1)[-1],  # never a password in a URL
        timeout=_timeout(),
    )


def system_prompt(name: str) -> str:
    return load_flows().system_prompt.replace("{name}", name)


def generate(*, name: str, history: list[dict]) -> str:
    """The model's reply to ``history`` (``[{"role": "user" | "assistant", "content"}]``,
    oldest first, ending with the member's message), for the member called ``name``.

    Raises ``BackendError`` when it is off, down, slow, refuses, or answers with something that
    isn't a chat completion with text in it. The text is returned as the model wrote it: the
    caller filters it (``companion.safety.reply_problems``).
    """
    if not generative_enabled():
        raise BackendError("off")
    payload = {
        "model": settings.COMPANION_MODEL,
        "messages": [{"role": "system", "content": system_prompt(name)}, *history],
        "max_tokens": MAX_TOKENS,
        "temperature": 0.3,
        "stream": False,
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key := getattr(settings, "COMPANION_API_KEY", ""):
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(  # noqa: S310 -- generative_enabled() allows http(s) only
        f"{_base()}/chat/completions",
        data=json.dumps(payload).encode(),
        headers=headers,
        method="POST",
    )
    timeout = _timeout()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 -- as above
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except TimeoutError:
        raise BackendError("timeout") from None
    except urllib.error.HTTPError as error:
        raise BackendError(f"http_{error.code}") from None
    except urllib.error.URLError as error:
        code = "timeout" if isinstance(error.reason, TimeoutError) else "unreachable"
        raise BackendError(code) from None
    except OSError:
        raise BackendError("unreachable") from None
    except http.client.HTTPException:  # a broken answer (cut short, a bad status line)
        raise BackendError("garbage") from None
    except ValueError:  # an address urllib can't use (a bad host or port in the setting)
        raise BackendError("bad_address") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise BackendError("too_big")
    try:
        answer = json.loads(raw)
        text = answer["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BackendError("garbage") from None
    if not isinstance(text, str) or not text.strip():
        raise BackendError("garbage")
    return text
