"""Which sensitive topics a message touches on: the rule set behind personal content boundaries.

One ``RuleSpec`` per ``SensitiveTopic``, matched by moderation's fast matcher
(``moderation.matcher.CompiledMatcher``): the same tolerant view (case, accents, spacing,
repeated letters, leetspeak) and the same negation window ("I'm not grieving" does not count).
The rules are data (``groups.topics.rules``), not admin-editable flag rules: they never flag,
hold or queue anything; they only fold a message for the members who asked for that, and
prompt its sender to add a content note.

Choices, so members can predict what is folded:

* Phrases are chosen for precision over reach. A missed topic costs a member one unfolded
  message; a false one folds a harmless message and nudges its sender for no reason, every time.
  So "died" alone is not grief ("my phone died"), "shot" alone is not violence ("flu shot"), and
  "hit me" is not abuse ("hit me up"); the longer phrases that are ("my dad died", "got shot",
  "he hit me") are listed instead.
* "abuse" in "substance abuse" or "drug abuse" is substance use, not abuse: a member who softens
  abuse did not ask to have recovery talk folded. That rule is a regular expression (``re:``);
  regular expressions see the plain view and are not negated.
* A content note is matched with the same rules plus the words people write in notes ("cw: sh",
  "food", "loss") and each topic's own label, so a note that names a topic ("Grief and loss")
  softens the message for members with that boundary.

The matchers are compiled once per process (``functools.cache``); the rules change only with
the code.
"""

from __future__ import annotations

import functools

from django.utils import translation

from groups.models import SensitiveTopic
from groups.topics.rules import NOTE_WORDS, TOPIC_PHRASES, TOPIC_RULES
from moderation.matcher import ACTION_QUEUE, CompiledMatcher, RuleSpec

__all__ = [
    "NOTE_WORDS",
    "TOPIC_PHRASES",
    "TOPIC_RULES",
    "message_topics",
    "note_topics",
    "topic_choices",
    "topics_in",
]


@functools.cache
def _body_matcher() -> CompiledMatcher:
    return CompiledMatcher(
        RuleSpec(number, topic.value, ACTION_QUEUE, "\n".join(TOPIC_RULES[topic]))
        for number, topic in enumerate(SensitiveTopic, start=1)
    )


@functools.cache
def _note_words_matcher() -> CompiledMatcher:
    """Note words and labels only: a note is matched with this and the body rules."""
    specs = []
    for number, topic in enumerate(SensitiveTopic, start=1):
        lines = list(NOTE_WORDS[topic])
        with translation.override("en"):  # the site's language; notes name topics that way
            label = str(topic.label)
        # A label the rules already know stays theirs: "abuse" keeps its look-behinds, so
        # "substance abuse" is still not abuse.
        if topic.value not in topics_in(label):
            lines.append(label)
        specs.append(RuleSpec(number, topic.value, ACTION_QUEUE, "\n".join(lines)))
    return CompiledMatcher(specs)


_BY_ID = {number: topic.value for number, topic in enumerate(SensitiveTopic, start=1)}


def _topics(matcher: CompiledMatcher, text: str) -> set[str]:
    if not text or not text.strip():
        return set()
    return {_BY_ID[rule_id] for rule_id in matcher.match(text).rule_ids}


def _ordered(values: set[str]) -> list[str]:
    return [topic.value for topic in SensitiveTopic if topic.value in values]


def topics_in(body: str) -> list[str]:
    """The sensitive topics the words of a message touch on, in ``SensitiveTopic`` order."""
    return _ordered(_topics(_body_matcher(), body))


def _note(content_warning: str) -> set[str]:
    return _topics(_body_matcher(), content_warning) | _topics(
        _note_words_matcher(), content_warning
    )


def note_topics(content_warning: str) -> list[str]:
    """The sensitive topics a content note names (the rules, note words like "sh" or "food",
    and each topic's label)."""
    return _ordered(_note(content_warning))


def message_topics(body: str, content_warning: str) -> list[str]:
    """Topics recognised in the body plus topics the content note names, in list order.

    Neither text is kept or logged.
    """
    return _ordered(_topics(_body_matcher(), body) | _note(content_warning))


def topic_choices(values) -> list[dict]:
    """``[{"value", "label", "phrase"}]`` for known topic values, in list order, for frames and
    templates: the label for lists and notes, the phrase for sentences."""
    wanted = set(values or ())
    return [
        {"value": topic.value, "label": str(topic.label), "phrase": str(TOPIC_PHRASES[topic])}
        for topic in SensitiveTopic
        if topic.value in wanted
    ]
