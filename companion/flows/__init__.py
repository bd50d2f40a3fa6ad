"""The built-in companion's guided flows, written as data: one TOML file per flow, plus
``common.toml`` for what it says outside a flow and the words it listens for.

A flow is a small state machine. Each step says one of its phrasings (taken in turn, so the
companion is predictable), offers choices (each naming the next step), and may move on when the
member writes anything (``on_text``), keeping their words under a name (``remember``) to reflect
them back later. A step with ``end = true`` finishes the flow. ``action`` names the one thing a
step does beyond talking: ``save_draft`` (rehearse) or ``people`` (who can I reach). A
``shortcut`` lets words typed outside any flow ("I feel distant right now") start one at a later
step, with those words already remembered.

``load_flows`` reads and checks everything once per process: a step pointing nowhere, a flow
with no way in, or a placeholder no step remembers is refused at start-up, not at 2 a.m.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Choice", "Flow", "FlowError", "Library", "Step", "load_flows", "normalise"]

FLOWS_DIR = Path(__file__).resolve().parent
ACTIONS = frozenset({"save_draft", "people"})
# Placeholders every phrasing may use; a flow adds the names its steps remember.
BASE_PLACEHOLDERS = frozenset({"name", "words"})
DYNAMIC_PLACEHOLDERS = {"people": "people"}  # action → the placeholder it fills

_PUNCTUATION = re.compile(r"[^\w\s']+")
_SPACES = re.compile(r"\s+")
# Curly quotes (as escapes) as the straight ones a keyboard types.
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def normalise(text: str) -> str:
    """Lower case, curly quotes straightened, punctuation gone, spaces collapsed: what the
    companion compares choices and listened-for words with."""
    text = (text or "").translate(_QUOTES).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


class FlowError(ValueError):
    """The flow files are inconsistent (a bug in the data, found at start-up)."""


@dataclass(frozen=True)
class Choice:
    label: str
    next: str


@dataclass(frozen=True)
class Step:
    key: str
    say: tuple[str, ...]
    choices: tuple[Choice, ...] = ()
    on_text: str = ""
    remember: str = ""
    end: bool = False
    action: str = ""
    max_chars: int = 0
    too_long: str = ""
    empty: str = ""


@dataclass(frozen=True)
class Flow:
    key: str
    order: int
    label: str
    summary: str
    keywords: tuple[str, ...]
    start: str
    steps: dict[str, Step]
    shortcut_prefixes: tuple[str, ...] = ()
    shortcut_step: str = ""
    shortcut_remember: str = ""


@dataclass(frozen=True)
class Library:
    """Every flow (in menu order) and the common copy."""

    flows: dict[str, Flow]
    say: dict[str, tuple[str, ...]]
    choices: dict[str, str]
    listen: dict[str, frozenset[str]]
    system_prompt: str
    menu: tuple[Flow, ...] = field(default=())

    def phrasings(self):
        """Every phrasing the built-in companion can say, with where it comes from."""
        for key, options in self.say.items():
            for text in options:
                yield f"common.{key}", text
        for flow in self.flows.values():
            for step in flow.steps.values():
                for text in step.say:
                    yield f"{flow.key}.{step.key}", text
                for extra in (step.too_long, step.empty):
                    if extra:
                        yield f"{flow.key}.{step.key}", extra


def _placeholders(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def _step(key: str, raw: dict, where: str) -> Step:
    say = raw.get("say")
    if not isinstance(say, list) or not say or not all(isinstance(s, str) and s for s in say):
        raise FlowError(f"{where}: 'say' needs at least one phrasing")
    action = raw.get("action", "")
    if action and action not in ACTIONS:
        raise FlowError(f"{where}: unknown action {action!r}")
    return Step(
        key=key,
        say=tuple(say),
        choices=tuple(Choice(c["label"], c["next"]) for c in raw.get("choices", [])),
        on_text=raw.get("on_text", ""),
        remember=raw.get("remember", ""),
        end=bool(raw.get("end", False)),
        action=action,
        max_chars=int(raw.get("max_chars", 0)),
        too_long=raw.get("too_long", ""),
        empty=raw.get("empty", ""),
    )


def _flow(path: Path) -> Flow:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    key = raw["key"]
    steps = {k: _step(k, v, f"{path.name} [steps.{k}]") for k, v in raw["steps"].items()}
    shortcut = raw.get("shortcut", {})
    flow = Flow(
        key=key,
        order=int(raw["order"]),
        label=raw["label"],
        summary=raw["summary"],
        keywords=tuple(normalise(k) for k in raw.get("keywords", [])),
        start=raw["start"],
        steps=steps,
        shortcut_prefixes=tuple(normalise(p) for p in shortcut.get("prefixes", [])),
        shortcut_step=shortcut.get("step", ""),
        shortcut_remember=shortcut.get("remember", ""),
    )
    _check_flow(flow, path.name)
    return flow


def _check_flow(flow: Flow, where: str) -> None:
    """Every pointer lands on a step, every step can be reached, every step either ends, moves
    on, or offers a choice, and each placeholder is something a step of the flow remembers."""
    steps = flow.steps
    for name in [flow.start, flow.shortcut_step] + [
        target
        for step in steps.values()
        for target in [step.on_text, *(c.next for c in step.choices)]
    ]:
        if name and name not in steps:
            raise FlowError(f"{where}: no step named {name!r}")
    reachable, todo = set(), [flow.start] + ([flow.shortcut_step] if flow.shortcut_step else [])
    while todo:
        key = todo.pop()
        if key in reachable:
            continue
        reachable.add(key)
        step = steps[key]
        todo += [c.next for c in step.choices] + ([step.on_text] if step.on_text else [])
    if unreachable := set(steps) - reachable:
        raise FlowError(f"{where}: steps nobody reaches: {sorted(unreachable)}")
    remembered = {s.remember for s in steps.values() if s.remember} | {flow.shortcut_remember}
    allowed = BASE_PLACEHOLDERS | remembered
    for step in steps.values():
        if not (step.end or step.on_text or step.choices):
            raise FlowError(f"{where} [steps.{step.key}]: a dead end (no end, text or choice)")
        extra = (
            {DYNAMIC_PLACEHOLDERS[step.action]} if step.action in DYNAMIC_PLACEHOLDERS else set()
        )
        for text in step.say:
            if unknown := _placeholders(text) - allowed - extra:
                raise FlowError(f"{where} [steps.{step.key}]: unknown placeholder {unknown}")


@functools.cache
def load_flows(directory: Path = FLOWS_DIR) -> Library:
    """Read and check the flow files (once per process)."""
    common = tomllib.loads((directory / "common.toml").read_text(encoding="utf-8"))
    flows = sorted(
        (_flow(path) for path in sorted(directory.glob("*.toml")) if path.name != "common.toml"),
        key=lambda f: f.order,
    )
    say = {k: tuple(v) for k, v in common["say"].items()}
    for key, options in say.items():
        for text in options:
            if unknown := _placeholders(text) - BASE_PLACEHOLDERS:
                raise FlowError(f"common.toml [say.{key}]: unknown placeholder {unknown}")
    labels = [normalise(f.label) for f in flows]
    if len(set(labels)) != len(labels):
        raise FlowError("two flows share a label")
    return Library(
        flows={f.key: f for f in flows},
        say=say,
        choices=dict(common["choices"]),
        listen={k: frozenset(normalise(w) for w in v) for k, v in common["listen"].items()},
        system_prompt=common["prompt"]["system"],
        menu=tuple(flows),
    )
