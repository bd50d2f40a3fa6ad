"""The reply filter every companion reply passes: no ways of self-harm, no diagnosis, no
medication advice, no claim to be human or a professional, no feelings or memories of others,
and no crisis language; the member's own words quoted back are theirs."""

import pytest

from companion.safety import REPLY_MAX_CHARS, is_crisis, reply_problems

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("If it gets bad, an overdose is not the answer.", "self_harm_method"),
        ("Some people think about a razor at times like this.", "self_harm_method"),
        ("Quoting you: “the blades in the drawer”.", "self_harm_method"),
        ("It sounds like you have an anxiety disorder.", "diagnosis"),
        ("You probably have PTSD from that.", "diagnosis"),
        ("I can't diagnose you, but this could be depression.", "diagnosis"),
        ("Maybe ask about raising your sertraline dose.", "medication"),
        ("A melatonin tablet might help you sleep.", "medication"),
        ("I'm a real person, so you can trust me.", "claims_human"),
        ("I am not a bot, I promise.", "claims_human"),
        ("As your therapist, I'd suggest a walk.", "claims_human"),
        ("I feel so sad hearing that.", "claims_feelings"),
        ("I'm so proud of you.", "claims_feelings"),
        ("I remember when you told me last week.", "claims_feelings"),
        ("Other members have told me the same thing.", "claims_feelings"),
        ("I want to kill myself too sometimes.", "crisis_language"),
    ],
)
def test_an_unsafe_reply_is_refused_naming_why(reply, problem):
    assert problem in reply_problems(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "Thank you for telling me. Would you like to try a few slow breaths together?",
        "I'm a program, not a person, and I'm not a therapist.",
        "You said: “I feel like I'm not a real person tonight”. That sounds like a lot to hold.",
        "I read: “my meds ran out and I'm anxious”. Your doctor or pharmacist can help with that.",
        "Your group meets on Tuesday. A few words in the room will be there for them.",
    ],
)
def test_a_calm_honest_reply_passes(reply):
    assert reply_problems(reply) == []


@pytest.mark.parametrize("reply", [None, "", "   ", 42, "x" * (REPLY_MAX_CHARS + 1), "a\x00b"])
def test_nothing_but_short_text_passes(reply):
    assert reply_problems(reply)


def test_crisis_language_is_read_by_moderations_matcher_with_its_tolerance():
    assert is_crisis("i cant go on, i want to end it all")
    assert is_crisis("I w4nt to d1e")
    assert not is_crisis("I would never hurt myself, I'm just tired")
    assert not is_crisis("")
