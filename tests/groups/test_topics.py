"""Sensitive topics: the rule set (groups/topics.py) over moderation's matcher, the labelled
set, negation, content notes, and the topics stored on messages."""

import json
import uuid
from pathlib import Path

import pytest

from groups import services
from groups.models import Message, SensitiveTopic
from groups.topics import TOPIC_RULES, message_topics, note_topics, topic_choices, topics_in
from moderation.matcher import parse_patterns

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "topic_samples.jsonl"


def load_samples():
    return [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]


def test_every_topic_has_rules_and_every_rule_line_is_a_usable_pattern():
    assert set(TOPIC_RULES) == set(SensitiveTopic)
    for topic, lines in TOPIC_RULES.items():
        assert lines, topic
        parse_patterns("\n".join(lines))  # raises PatternError naming any bad line


def test_the_labelled_set_covers_every_topic_and_plain_messages():
    samples = load_samples()
    labelled = {topic for sample in samples for topic in sample["topics"]}
    assert labelled == set(SensitiveTopic.values)
    assert sum(1 for sample in samples if not sample["topics"]) >= 40
    for topic in SensitiveTopic.values:
        assert sum(topic in s["topics"] for s in samples) >= 8, topic


def test_topic_rules_reach_90_percent_recall_and_95_percent_precision_on_the_labelled_set():
    found = missed = wrong = 0
    misses, false_alarms = [], []
    for sample in load_samples():
        wanted, got = set(sample["topics"]), set(topics_in(sample["text"]))
        found += len(wanted & got)
        missed += len(wanted - got)
        wrong += len(got - wanted)
        if wanted - got:
            misses.append((sample["text"], sorted(wanted - got)))
        if got - wanted:
            false_alarms.append((sample["text"], sorted(got - wanted)))

    recall = found / (found + missed)
    precision = found / (found + wrong)
    assert recall >= 0.90, f"recall {recall:.1%}; missed: {misses}"
    assert precision >= 0.95, f"precision {precision:.1%}; false alarms: {false_alarms}"


def test_plain_messages_touch_on_no_topic():
    plain = [s["text"] for s in load_samples() if not s["topics"]]
    touched = [text for text in plain if topics_in(text)]
    assert len(touched) <= len(plain) // 20, touched


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("My mum died last spring", "grief"),
        ("MY MUM DIED", "grief"),
        ("my mum diiied", "grief"),
        ("g r i e f", "grief"),
        ("gr1ef", "grief"),
        ("I keep thinking about s.u.i.c.i.d.e", "suicide"),
        ("Going in for surgery", "medical"),
    ],
)
def test_topics_are_found_through_case_spacing_repeats_and_leetspeak(text, topic):
    assert topic in topics_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm not grieving, just tired",
        "I would never hurt myself",
        "I'm not suicidal, I promise",
        "I haven't been drunk in years, honestly",
    ],
)
def test_a_topic_phrase_right_after_a_negation_does_not_count(text):
    assert topics_in(text) == []


def test_substance_abuse_is_substance_use_not_abuse():
    assert topics_in("Substance abuse runs in my family") == ["substances"]
    assert topics_in("Drug abuse took my twenties") == ["substances"]
    assert topics_in("It was emotional abuse") == ["abuse"]


def test_sexual_violence_is_its_own_topic_not_violence_too():
    assert topics_in("I was sexually assaulted at uni") == ["sexual_violence"]
    assert topics_in("I was assaulted outside the station") == ["violence"]


def test_a_content_note_names_topics_by_label_by_note_words_or_by_the_rules():
    for topic in SensitiveTopic:
        assert note_topics(str(topic.label)) == [topic.value], topic
    assert note_topics("cw: sh, food") == ["self_harm", "eating_body"]
    assert note_topics("loss") == ["grief"]
    assert note_topics("my dad died") == ["grief"]
    assert note_topics("long message, sorry") == []


def test_message_topics_are_the_bodys_and_the_notes_in_list_order():
    assert message_topics("A lovely walk today", "") == []
    assert message_topics("A lovely walk today", "Grief and loss") == ["grief"]
    assert message_topics("The funeral was hard", "Medical") == ["grief", "medical"]
    assert message_topics("", "") == []


def test_topic_choices_give_value_label_and_phrase_in_list_order():
    assert topic_choices(["medical", "grief", "nonsense"]) == [
        {"value": "grief", "label": "Grief and loss", "phrase": "grief and loss"},
        {"value": "medical", "label": "Medical", "phrase": "medical things"},
    ]


# --- Stored on messages ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_posted_message_stores_its_topics_and_carries_them(group, member):
    result = services.post_message(
        group, author=member, client_id=uuid.uuid4(), body="The funeral is on Friday"
    )
    assert Message.objects.get(pk=result.message.pk).topics == ["grief"]
    assert result.payload["topics"] == ["grief"]


@pytest.mark.django_db
def test_editing_a_message_recomputes_its_topics(group, member):
    result = services.post_message(
        group, author=member, client_id=uuid.uuid4(), body="The funeral is on Friday"
    )
    services.edit_message(group, author=member, seq=result.message.seq, body="Tea on Friday?")
    assert Message.objects.get(pk=result.message.pk).topics == []


@pytest.mark.django_db
def test_deleting_a_message_clears_its_topics(group, member):
    result = services.post_message(
        group, author=member, client_id=uuid.uuid4(), body="The funeral is on Friday"
    )
    services.delete_message(group, actor=member, seq=result.message.seq)
    assert Message.objects.get(pk=result.message.pk).topics == []
