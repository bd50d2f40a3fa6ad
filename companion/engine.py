"""The built-in companion: a deterministic state machine over the flows in ``companion/flows``.

Pure: no database, no network. ``respond`` takes where the conversation is (``State``) and what
the member wrote, and returns what to say and where the conversation goes next (``Outcome``).
The same state and words always give the same reply. ``companion.services.replies`` stores the
outcome; a generative model may only stand in for the ``free`` replies (words the flows have no
answer for), and the built-in reply is what stays when it can't.

What is checked first, in order: crisis language (the caller runs moderation's matcher and says
so), an answer to "may I let a moderator know?", "stop", a question about what the companion
is, "menu", then the current flow's choices and steps, then a way into a flow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from companion.flows import Flow, Library, Step, load_flows, normalise

__all__ = [
    "REFLECT_MAX_CHARS",
    "Outcome",
    "State",
    "choices_for",
    "greet",
    "reflect",
    "respond",
    "resume_state",
]

# The member's words quoted back are cut to this (on a word boundary), so replies stay short.
REFLECT_MAX_CHARS = 200
# Outside a flow, a keyword starts a flow only in a short message: in a longer one it is more
# likely part of something the member is telling, which deserves a reply of its own.
KEYWORD_MAX_WORDS = 8


@dataclass(frozen=True)
class State:
    """Where the conversation is: a flow's step (both empty: none), the member's words the flow
    holds (``slots``), and whether the companion is waiting for a yes or no about telling a
    moderator."""

    flow: str = ""
    step: str = ""
    slots: Mapping[str, str] = field(default_factory=dict)
    awaiting_consent: bool = False


@dataclass(frozen=True)
class Outcome:
    """What the companion says and the state after it.

    ``intent`` names the kind of reply (``free`` is the only one a model may replace).
    ``about_others``: the text names other people (never sent to a model). ``save_draft``: the
    words to keep as the member's rehearsed share. ``alert_moderator``: the member said yes.
    """

    text: str
    state: State
    intent: str
    flow: str = ""
    step: str = ""
    about_others: bool = False
    save_draft: str | None = None
    alert_moderator: bool = False


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        return ""


def reflect(text: str) -> str:
    """The member's words as the companion quotes them: one line, at most REFLECT_MAX_CHARS."""
    text = " ".join((text or "").split())
    if len(text) <= REFLECT_MAX_CHARS:
        return text
    cut = text[:REFLECT_MAX_CHARS].rsplit(" ", 1)[0] or text[:REFLECT_MAX_CHARS]
    return cut.rstrip(",;:") + "…"


def _pick(options, turn: int) -> str:
    return options[turn % len(options)]


def _render(template: str, **values) -> str:
    return template.format_map(_Placeholders(values))


def _has_phrase(norm: str, phrases) -> bool:
    padded = f" {norm} "
    return any(f" {phrase} " in padded for phrase in phrases)


def _library() -> Library:
    return load_flows()


def greet(*, name: str, turn: int = 0) -> Outcome:
    """The companion's first words in a new practice space: what it is, and what it can do."""
    lib = _library()
    return Outcome(
        text=_render(_pick(lib.say["greeting"], turn), name=name), state=State(), intent="greeting"
    )


def choices_for(state: State) -> list[str]:
    """The replies offered as buttons in ``state``: the consent question's two answers, the
    current step's choices and "Stop here", or (outside a flow) one per flow."""
    lib = _library()
    if state.awaiting_consent:
        return [lib.choices["crisis_yes"], lib.choices["crisis_no"]]
    step = _current_step(state)
    if step is None:
        return [flow.label for flow in lib.menu]
    return [c.label for c in step.choices] + [lib.choices["stop"]]


def _current_step(state: State) -> Step | None:
    flow = _library().flows.get(state.flow)
    if flow is None:
        return None
    return flow.steps.get(state.step)


def respond(
    state: State,
    text: str,
    *,
    name: str,
    turn: int = 0,
    crisis: bool = False,
    people: Callable[[], list[str]] = list,
) -> Outcome:
    """The built-in reply to ``text`` in ``state``.

    ``crisis``: moderation's matcher read crisis language in ``text`` (the caller checks; this
    module never touches the database). ``people``: lines naming the member's next meetings
    and their safe persons' usual times, computed only when the ``people`` flow needs them.
    An unknown flow or step in ``state`` (a flow removed since) counts as no flow at all.
    """
    lib = _library()
    words = reflect(text)
    norm = normalise(text)
    values = {"name": name, "words": words}

    def say(key: str, new_state: State, intent: str, **extra) -> Outcome:
        return Outcome(_render(_pick(lib.say[key], turn), **values), new_state, intent, **extra)

    if crisis:
        return say("crisis_ask", State(awaiting_consent=True), "crisis_ask")
    if state.awaiting_consent:
        if norm in lib.listen["yes"]:
            return say("crisis_yes", State(), "crisis_yes", alert_moderator=True)
        if norm in lib.listen["no"] or norm in lib.listen["stop"]:
            return say("crisis_no", State(), "crisis_no")
        return say("crisis_reask", state, "crisis_reask")
    if norm in lib.listen["stop"]:
        return say("stop", State(), "stop")
    step = _current_step(state)
    if _has_phrase(norm, lib.listen["honesty"]):
        return say("honesty_in_flow" if step else "honesty", state, "honesty")
    if norm in lib.listen["menu"]:
        return say("menu", State(), "menu")

    if step is not None:
        flow = lib.flows[state.flow]
        for choice in step.choices:
            if norm == normalise(choice.label):
                return _enter(flow, choice.next, state.slots, values, turn, people)
        if step.on_text and norm:
            if step.max_chars and len(" ".join(text.split())) > step.max_chars:
                return Outcome(step.too_long, state, "too_long", flow.key, step.key)
            slots = dict(state.slots)
            if step.remember:
                slots[step.remember] = " ".join(text.split())
            return _enter(flow, step.on_text, slots, values, turn, people)
        if (chosen := _flow_named(norm)) is not None:  # a menu button while in a flow
            return _enter(chosen, chosen.start, {}, values, turn, people)
        return say("nudge", state, "nudge")

    if (chosen := _flow_named(norm)) is not None:
        return _enter(chosen, chosen.start, {}, values, turn, people)
    for flow in lib.menu:
        if flow.shortcut_step and any(
            norm == p or norm.startswith(p + " ") for p in flow.shortcut_prefixes
        ):
            slots = {flow.shortcut_remember: " ".join(text.split())}
            return _enter(flow, flow.shortcut_step, slots, values, turn, people)
    if (chosen := _flow_for(norm)) is not None:
        return _enter(chosen, chosen.start, {}, values, turn, people)
    return say("unknown", State(), "free")


def _flow_named(norm: str) -> Flow | None:
    """The flow whose menu label the member sent (a button press, or typed)."""
    return next((f for f in _library().menu if norm == normalise(f.label)), None)


def _flow_for(norm: str) -> Flow | None:
    """The flow a short message asks for by one of its keywords."""
    if not norm or len(norm.split()) > KEYWORD_MAX_WORDS:
        return None
    return next((f for f in _library().menu if _has_phrase(norm, f.keywords)), None)


def _enter(flow: Flow, key: str, slots, values: dict, turn: int, people) -> Outcome:
    """Say step ``key`` of ``flow``; an ending step leaves the flow (back to the menu)."""
    step = flow.steps[key]
    # Quoted back short, except the draft: the member reads exactly what they would post.
    fill = {**values, **{k: v if k == "draft" else reflect(v) for k, v in slots.items()}}
    about_others = False
    draft = None
    text = _render(_pick(step.say, turn), **fill)
    if step.action == "people":
        lines = people()
        about_others = bool(lines)
        text = (
            _render(_pick(step.say, turn), **fill, people="\n".join(f"• {line}" for line in lines))
            if lines
            else step.empty
        )
    elif step.action == "save_draft":
        draft = slots.get("draft", "")
    new_state = State() if step.end else State(flow=flow.key, step=key, slots=dict(slots))
    return Outcome(
        text=text,
        state=new_state,
        intent="flow",
        flow=flow.key,
        step=key,
        about_others=about_others,
        save_draft=draft,
    )


def resume_state(flow: str, step: str, slots, *, awaiting_consent: bool) -> State:
    """A ``State`` from stored fields, forgetting a flow or step that no longer exists."""
    state = State(flow=flow, step=step, slots=dict(slots or {}), awaiting_consent=awaiting_consent)
    if flow and _current_step(state) is None:
        return replace(state, flow="", step="", slots={})
    return state
