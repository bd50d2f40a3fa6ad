"""The built-in companion: each guided flow walked through as a member would, the honesty rule,
stopping, the menu, and the flow files themselves (every step reachable, every phrasing
allowed by the reply filter)."""

from pathlib import Path

import pytest

from companion.engine import State, choices_for, greet, reflect, respond, resume_state
from companion.flows import FlowError, load_flows
from companion.safety import reply_problems


def walk(*turns, state=None, **options):
    """Send each of ``turns`` in order; return the outcomes."""
    state = state or State()
    outcomes = []
    for turn, text in enumerate(turns):
        outcome = respond(state, text, name="Willow", turn=turn, **options)
        outcomes.append(outcome)
        state = outcome.state
    return outcomes


def test_the_greeting_says_it_is_a_program_and_offers_every_flow():
    hello = greet(name="Willow")
    assert "Willow" in hello.text
    assert "a program, not a person" in hello.text
    assert "not a therapist" in hello.text
    assert choices_for(hello.state) == [
        "Grounding",
        "Name how I feel",
        "Rehearse a share",
        "Name a pattern",
        "Who can I reach?",
    ]


def test_grounding_walks_breathing_then_the_five_senses_and_ends_back_at_the_menu():
    steps = walk(
        "Grounding",
        "Breathe slowly",
        "Done",
        "Notice what's around me",
        "a lamp, a mug, my hands, the window, a book",
        "Done",
        "a fridge humming",
        "Done",
        "Done",
        "A little more here",
    )
    said = [o.text for o in steps]
    assert "breathe slowly" in said[0]
    assert "a count of four" in said[1] and "a count of six" in said[1]
    assert "five things you can see" in said[3]
    assert "four things you can touch" in said[4].lower()
    assert "Three things you can hear" in said[5]
    assert "Two things you can smell" in said[6]
    assert "one thing you can taste" in said[7]
    assert "You did that" in said[8]
    assert steps[-1].state == State()  # the flow ended
    assert choices_for(steps[-1].state)[0] == "Grounding"
    assert all(o.flow == "grounding" for o in steps)


def test_naming_reflects_the_members_own_words_back():
    steps = walk("Name how I feel", "I feel distant right now", "in my chest, tight")
    assert "“I feel distant right now”" in steps[1].text
    assert "“I feel distant right now”" in steps[2].text
    assert "“in my chest, tight”" in steps[2].text
    assert steps[2].state == State()


def test_saying_i_feel_outside_a_flow_starts_naming_with_those_words():
    outcome = respond(State(), "I feel distant right now", name="Willow")
    assert outcome.flow == "naming"
    assert "You said: “I feel distant right now”" in outcome.text
    assert choices_for(outcome.state) == ["Nowhere in particular", "Stop here"]


def test_rehearsing_keeps_the_draft_only_when_the_member_says_so():
    words = "I've been feeling far away this week, and I'd like to say so."
    asked, checked = walk("Rehearse a share", words)
    assert "stays here unless you decide to post it" in asked.text
    assert f"“{words}”" in checked.text
    assert checked.save_draft is None
    assert choices_for(checked.state) == ["Yes, keep it", "Let me rewrite it", "Stop here"]

    kept = respond(checked.state, "Yes, keep it", name="Willow", turn=2)
    assert kept.save_draft == words
    assert "won't be posted unless you choose to" in kept.text

    rewrite = respond(checked.state, "Let me rewrite it", name="Willow", turn=2)
    assert rewrite.save_draft is None and rewrite.state.step == "ask"


def test_a_draft_too_long_for_a_share_is_asked_for_again_in_a_sentence_or_two():
    asked = respond(State(), "Rehearse a share", name="Willow")
    long = respond(asked.state, "word " * 400, name="Willow", turn=1)
    assert long.intent == "too_long"
    assert "a sentence or two" in long.text
    assert long.state == asked.state  # still waiting for the share


def test_naming_a_script_is_practised_as_a_noticing():
    steps = walk("Name a pattern", "the urge to shut down", "I notice the urge to shut down")
    assert "I notice the urge to shut down" in steps[0].text  # the example
    assert "“the urge to shut down”" in steps[1].text
    assert "you didn't have to follow it" in steps[2].text
    direct = respond(State(), "I notice the urge to disappear", name="Willow")
    assert direct.flow == "script" and "you didn't have to follow it" in direct.text


def test_pointing_toward_people_names_meetings_and_safe_persons_and_marks_it_as_about_others():
    lines = ["Evening circle meets next on Tuesday (your time).", "Maple is usually around."]
    outcome = respond(State(), "Who can I reach?", name="Willow", people=lambda: lines)
    assert all(line in outcome.text for line in lines)
    assert outcome.about_others
    empty = respond(State(), "Who can I reach?", name="Willow", people=list)
    assert "group's room is always there" in empty.text
    assert not empty.about_others


@pytest.mark.parametrize(
    "question",
    [
        "Are you a real person?",
        "are you human",
        "Is this a bot or AI?",
        "who are you",
        "Do you care?",
    ],
)
def test_asked_what_it_is_it_always_says_it_is_a_program(question):
    idle = respond(State(), question, name="Willow")
    assert idle.intent == "honesty" and "I'm a program, not a person" in idle.text
    in_flow = walk("Grounding", "Breathe slowly", question)[-1]
    assert "I'm a program, not a person" in in_flow.text
    assert in_flow.state.step == "breathe"  # and carries on where it was if the member likes


@pytest.mark.parametrize("stop", ["stop", "Stop here", "That's enough.", "please stop"])
def test_it_stops_when_asked_and_does_not_push(stop):
    stopped = walk("Grounding", "Breathe slowly", stop)[-1]
    assert stopped.intent == "stop" and stopped.state == State()
    assert "we'll stop here" in stopped.text
    assert "?" not in stopped.text  # no question after a stop


def test_words_it_has_no_flow_for_are_reflected_and_the_menu_offered():
    outcome = respond(State(), "Long day. The house is very quiet tonight.", name="Willow")
    assert outcome.intent == "free"
    assert "“Long day. The house is very quiet tonight.”" in outcome.text
    assert choices_for(outcome.state)[0] == "Grounding"


def test_an_unknown_flow_in_the_stored_state_counts_as_no_flow():
    state = resume_state("retired-flow", "ask", {"x": "y"}, awaiting_consent=False)
    assert state == State()
    assert respond(State(flow="retired-flow", step="x"), "hello", name="W").intent == "menu"
    assert choices_for(State(flow="retired-flow", step="x"))[0] == "Grounding"


def test_the_same_words_in_the_same_state_always_get_the_same_reply():
    first = walk("Grounding", "Notice what's around me", "a lamp")
    second = walk("Grounding", "Notice what's around me", "a lamp")
    assert [o.text for o in first] == [o.text for o in second]


def test_reflections_are_cut_short_on_a_word_boundary():
    text = "very " * 100
    quoted = reflect(text)
    assert len(quoted) <= 201 and quoted.endswith("…") and "  " not in quoted


@pytest.mark.django_db
def test_every_built_in_phrasing_passes_the_reply_filter():
    filled = {"name": "Willow", "words": "a few words", "people": "• Evening circle"}
    problems = {}
    for where, text in load_flows().phrasings():
        sample = text.format_map(
            type("D", (dict,), {"__missing__": lambda self, key: "a few words"})(filled)
        )
        if found := reply_problems(sample):
            problems[where] = found
    assert not problems


def test_a_flow_file_pointing_at_a_missing_step_is_refused_at_start_up(tmp_path: Path):
    source = Path(load_flows.__wrapped__.__defaults__[0])
    (tmp_path / "common.toml").write_text((source / "common.toml").read_text())
    (tmp_path / "broken.toml").write_text(
        'key = "broken"\norder = 1\nlabel = "Broken"\nsummary = "x"\nstart = "a"\n'
        '[steps.a]\nsay = ["Hello."]\nchoices = [{ label = "On", next = "nowhere" }]\n'
    )
    with pytest.raises(FlowError, match="no step named 'nowhere'"):
        load_flows.__wrapped__(tmp_path)
