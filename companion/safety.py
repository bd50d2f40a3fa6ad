"""What the companion may say, and when the member's words read as crisis language.

``is_crisis``: moderation's matcher (the same rules, editable in the admin, and the same
tolerance for spelling tricks) says whether a member's message reads as crisis language.

``reply_problems``: the reply filter every companion reply passes before it is stored, from the
built-in flows or a model alike. A reply must not name a way of harming oneself, diagnose,
advise on medication, claim to be human (or a professional), or claim feelings or memories of
other people; and it must not itself read as crisis language. A model's reply that fails is
replaced by a safe built-in one (``companion.services.replies``); the built-in copy is checked
against the same filter by the tests, so it can't fail in production.

The patterns run on moderation's plain view of the text (case and accents folded, look-alike
letters mapped, spaces collapsed). They err on the side of refusing: a refused model reply
costs a plainer built-in one, never silence. Words inside curly quotes (“…”) are the member's
own, quoted back to them, or an example of what they might say (“I feel distant right now”):
the claims, diagnosis and medication rules look only outside them; ways of self-harm and
crisis language are refused anywhere, quoted or not.
"""

from __future__ import annotations

import re

from moderation import matcher

__all__ = ["REPLY_MAX_CHARS", "is_crisis", "reply_problems"]

# A companion reply is short: a model's longer answer is cut at a sentence end within this.
REPLY_MAX_CHARS = 600

_RULES: dict[str, tuple[str, ...]] = {
    # Ways of harming oneself, and the means. Never said, whatever the framing.
    "self_harm_method": (
        r"\b(over ?dos\w*|o\.?d\.? on|lethal|fatal dose|noose|hang(ing)? (yourself|oneself|myself)"
        r"|ligature|cut(ting)? (yourself|deeper|your (wrist|arm|leg)s?)|slit\w*|razor\w*|blades?"
        r"|bleach|poison\w*|jump(ing)? (off|from|in front)|train tracks?|how many pills"
        r"|pills? (to|that would)|suffocat\w*|carbon monoxide|starv(e|ing) yourself)\b",
    ),
    # Naming a condition the member has, or offering to.
    "diagnosis": (
        r"\bdiagnos\w*",
        r"\byou('re| are)? (clearly |probably |likely |definitely )?(suffering from|a case of)\b",
        r"\b(you|it sounds like you|sounds like you|you might|you may|you probably) "
        r"(have|has|might have|may have|probably have|could have) (a |an )?"
        r"(\w+ )?(disorder|depression|ptsd|c-?ptsd|bpd|bipolar|adhd|autism|ocd|psychosis"
        r"|schizo\w*|anxiety disorder|personality|dissociative|trauma response disorder)\b",
        r"\b(symptoms? of|signs? of) (a |an )?(\w+ )?(disorder|depression|ptsd|bipolar|psychosis)\b",
    ),
    # Medication and doses: a doctor's or pharmacist's to talk about.
    "medication": (
        r"\b(medication|medicine|meds|dosage|doses?|mg|milligrams?|prescri\w+|pills?|tablets?"
        r"|ssris?|snris?|antidepressants?|anti-?psychotics?|benzo\w*|xanax|valium|sertraline"
        r"|fluoxetine|prozac|zoloft|lexapro|citalopram|quetiapine|seroquel|lithium|melatonin"
        r"|ibuprofen|paracetamol|acetaminophen|sleeping pills?|painkillers?)\b",
    ),
    # The companion is a program and says so; it never says otherwise.
    "claims_human": (
        r"\b(i am|i'm|im) (also |really |actually |just )?(a |an )?(real )?"
        r"(human( being)?|person|woman|man|girl|guy|therapist|counsell?or|psychologist"
        r"|psychiatrist|doctor|nurse|social worker|friend of yours)\b",
        r"\b(i am|i'm|im) not (a |an )?(bot|program|ai|robot|machine|computer|chatbot)\b",
        r"\bas (a |an |your )(human|person|therapist|counsell?or|doctor|friend)\b",
        r"\b(my|our) (therapy|clinical|professional) (opinion|advice|assessment)\b",
    ),
    # Feelings, a body, memories, and knowing other people.
    "claims_feelings": (
        r"\bi (really |truly |also |do |too )?(feel|felt|am feeling|'m feeling)\b",
        r"\b(i am|i'm|im) (so |very |really )?(sad|happy|glad|proud|worried|scared|lonely"
        r"|hurt|upset|moved|touched|heartbroken|delighted)\b",
        r"\bi (love|miss|care about) you\b",
        r"\b(my|i have) (own )?(feelings|emotions|body|heart|memories)\b",
        r"\bi (remember|recall)\b",
        r"\b(other|another) (members?|people|person|users?) (have |has )?(told|said|shared|wrote)\b",
        r"\b(someone|somebody) (else )?(told|said to) me\b",
    ),
}
_COMPILED = {code: [re.compile(p) for p in patterns] for code, patterns in _RULES.items()}
# Checked inside quotes too: never said, not even quoting the member.
_ANYWHERE = frozenset({"self_harm_method"})
# A passage in curly quotes (as escapes: the opening and closing double quotation marks).
_QUOTED = re.compile("\u201c[^\u201d]*\u201d")


def is_crisis(text: str) -> bool:
    """Does ``text`` read as crisis language to moderation's matcher (its crisis rules)?"""
    return bool(text) and matcher.match(text).crisis


def reply_problems(text) -> list[str]:
    """Why ``text`` may not be said by the companion (codes), or [] when it may.

    Also refused: anything that isn't a non-empty string of at most ``REPLY_MAX_CHARS``.
    """
    if not isinstance(text, str) or not text.strip():
        return ["empty"]
    if len(text) > REPLY_MAX_CHARS:
        return ["too_long"]
    if "\x00" in text:
        return ["not_text"]
    view = matcher.plain_view(text).replace("\u2019", "'").replace("\u2018", "'")
    unquoted = _QUOTED.sub(" ", view)
    problems = [
        code
        for code, patterns in _COMPILED.items()
        if any(p.search(view if code in _ANYWHERE else unquoted) for p in patterns)
    ]
    if is_crisis(text):
        problems.append("crisis_language")
    return problems
