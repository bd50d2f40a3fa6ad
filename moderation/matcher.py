"""The automatic-flag matcher: every new message is checked against the enabled flag rules.

Two views of a message are matched, never stored, logged or returned:

* the **plain view** (for ``re:`` patterns): Unicode NFKD with combining marks and invisible
  format characters removed, a few look-alike Cyrillic and Greek letters mapped to Latin,
  case-folded, and every run of whitespace turned into one space. Regular expressions see exactly
  this, so they stay predictable (phone numbers, email addresses, links).
* the **tolerant view** (for words and phrases): the plain view, plus common leetspeak inside
  words (0→o, 1→i, or l in "11", 3→e, 4→a, 5→s, 7→t, @→a, $→s, ! and | between letters; an
  "l" in a phrase also accepts an "i", so "myse1f" is "myself"), with
  punctuation inside words removed ("k.i.l.l", "s-u-i-c-i-d-e", "can't" → "cant"), and everything
  else that is not a letter or digit turned into a separator: "," where a clause ends (.,;:!? or
  a new line), a space otherwise.

A phrase is compiled so that, in the tolerant view, each of its letters may repeat ("diiiie") and
a separator may sit between any two letters ("s u i c i d e", "kill my self", "sui cide"); the
phrase must still start at the start of a word and end at the end of one, so "skill myself" is
not "kill myself". A phrase found right after a negation in the same clause ("I would never hurt
myself", "I'm not suicidal") does not count; see ``_negated``.

All phrases of all rules are joined into one compiled regular expression that finds candidate
positions; only at a candidate are the rules' own expressions tried, to learn which rules matched.
The compiled matcher is built once per process and rebuilt only when the rules change
(``get_matcher``): a version token in Django's cache, replaced by every rule write, says when.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import threading
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

REGEX_PREFIX = "re:"
COMMENT_PREFIX = "#"
WILDCARD = "*"
WILDCARD_MAX_WORDS = 3

KIND_CRISIS = "crisis"
ACTION_QUEUE = "queue"
ACTION_HOLD = "hold"

# --- Normalisation ---------------------------------------------------------------------------

# Combining marks (accents) and invisible format characters (zero-width space and joiners,
# soft hyphen, word joiner, byte-order mark) that can be slipped into a word.
_STRIP = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+"
)
# Look-alike Cyrillic and Greek letters (written as escapes) that stand in for Latin ones.
_HOMOGLYPHS = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0456"
    "\u0458\u0455\u0501\u0261\u03b1\u03b5\u03b9\u03ba\u03bf\u03c1\u03c4\u03c5\u03bd",
    "abekmhopctyxijsdgaeikoptuv",
)
_SPACES = re.compile(r"\s+")

_LEET_CHARS = frozenset("013457@$!|")
_BANG_IN_WORD = re.compile(r"(?<=[a-z])!(?=[a-z])")
_PIPE_IN_WORD = re.compile(r"(?<=[a-z])\|(?=[a-z])")
# A word holding both a letter and a digit-or-symbol swap ("k1ll", "$uicide"); plain words and
# plain numbers ("10", "18:30") are left alone.
_LEET_TOKEN = re.compile(r"(?<![a-z0-9@$])(?=[a-z0-9@$]*[a-z])(?=[a-z0-9@$]*[013457@$])[a-z0-9@$]+")
_LEET_I = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_L = str.maketrans(
    {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)

# Apostrophes (straight and curly), dots, dashes and the like, removed inside a word.
_PUNCT_RUN = re.compile("[.\\-_*'\u2019\u2018`\u00b4~\u00b7\u2022^+/\\\\]+")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# Clause ends become ",", every other ASCII non-letter-or-digit a space (str.translate: fast).
_CLAUSE_CHARS = ".,;:!?\n"
_SEPARATORS = str.maketrans(
    {
        chr(code): ("," if chr(code) in _CLAUSE_CHARS else " ")
        for code in range(128)
        if not chr(code).isalnum()
    }
)
_CLAUSE_RUN = re.compile(r" *,[ ,]*")
_SPACE_RUN = re.compile(r"  +")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_REPEATS = re.compile(r"([a-z])\1+")
_LONG_RUN = re.compile(r"([a-z])\1{2,}")


def _base(text: str) -> str:
    if text.isascii():
        return text.lower()
    text = _STRIP.sub("", unicodedata.normalize("NFKD", text.casefold()))
    return text.translate(_HOMOGLYPHS)


def plain_view(text: str) -> str:
    """What ``re:`` patterns see: accent- and case-folded, whitespace runs as one space."""
    return _SPACES.sub(" ", _base(text)).strip()


def _leet_as_i(match: re.Match) -> str:
    return match.group().translate(_LEET_I)


def _leet_as_l(match: re.Match) -> str:
    return match.group().translate(_LEET_L)


def _drop_punctuation_in_words(text: str) -> str:
    """ "k.i.l.l" → "kill", "can't" → "cant"; a dot or dash next to a space stays a separator."""
    last = len(text) - 1

    def drop(run: re.Match) -> str:
        start, end = run.start(), run.end()
        if start and end <= last and text[start - 1] in _ALNUM and text[end] in _ALNUM:
            return ""
        return run.group()

    return _PUNCT_RUN.sub(drop, text)


def _tolerant_views(text: str) -> list[str]:
    """The tolerant view; two of them when a "1" inside a word may be an "i" or an "l"."""
    if _LEET_CHARS.isdisjoint(text):
        return [_separate(text)]
    if "!" in text:
        text = _BANG_IN_WORD.sub("i", text)
    if "|" in text:
        text = _PIPE_IN_WORD.sub("l", text)
    as_i = _LEET_TOKEN.sub(_leet_as_i, text)
    views = [_separate(as_i)]
    if "1" in text:
        as_l = _LEET_TOKEN.sub(_leet_as_l, text)
        if as_l != as_i:  # "k1ll" is kill, "myse1f" is myself
            views.append(_separate(as_l))
    return views


def _separate(text: str) -> str:
    text = _LONG_RUN.sub(r"\1\1", _drop_punctuation_in_words(text))
    if not text.isascii():
        text = _NON_ASCII.sub(lambda run: "," if "…" in run.group() else " ", text)
    text = text.translate(_SEPARATORS)
    if "," in text:
        text = _CLAUSE_RUN.sub(",", text)
    text = _SPACE_RUN.sub(" ", text)
    return text.strip(" ,")


def tolerant_view(text: str) -> str:
    """What words and phrases see: see the module docstring. Only letters, digits, " " and ",".

    (A "1" inside a word reads as "i" here; the matcher also tries it as "l".)
    """
    return _tolerant_views(_base(text))[0]


# --- Negation --------------------------------------------------------------------------------

_NEGATORS = frozenset(
    [
        "not",
        "never",
        "dont",
        "doesnt",
        "didnt",
        "wont",
        "wouldnt",
        "isnt",
        "arent",
        "wasnt",
        "havent",
        "hasnt",
        "hadnt",
        "shouldnt",
        "no",
        "nor",
        "neither",
    ]
)
# Words that may stand between a negation and the phrase it negates: "I'm not going to hurt
# myself", "I would never ever", "I don't feel suicidal". Anything else (", but", "okay", "worry")
# ends the negation's reach, so "I'm not okay I want to die" still counts.
_NEGATION_FILLERS = frozenset(
    [
        "i",
        "im",
        "id",
        "ive",
        "am",
        "be",
        "been",
        "would",
        "will",
        "ill",
        "ever",
        "even",
        "really",
        "actually",
        "seriously",
        "going",
        "gonna",
        "to",
        "planning",
        "plan",
        "plans",
        "want",
        "wanna",
        "trying",
        "try",
        "thinking",
        "think",
        "of",
        "about",
        "have",
        "do",
        "feel",
        "feeling",
        "intend",
        "intending",
        "anymore",
    ]
)
_NEGATION_REACH = 4  # words


def _squash(word: str) -> str:
    return _REPEATS.sub(r"\1", word)


_NEGATORS_SQUASHED = frozenset(_squash(w) for w in _NEGATORS)
_FILLERS_SQUASHED = frozenset(_squash(w) for w in _NEGATION_FILLERS)


def _negated(view: str, start: int) -> bool:
    """True when the phrase found at ``start`` follows a negation in the same clause."""
    clause = view[:start].rsplit(",", 1)[-1].split()
    for back in range(1, min(_NEGATION_REACH, len(clause)) + 1):
        word = _squash(clause[-back])
        if word in _NEGATORS_SQUASHED:
            before = clause[-back - 1] if len(clause) > back else ""
            return before != "why"  # "why not just ..." is not a negation
        if word not in _FILLERS_SQUASHED:
            return False
    return False


# --- Patterns --------------------------------------------------------------------------------


class PatternError(ValueError):
    """One or more lines of a rule's patterns cannot be used. ``problems`` names each line."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Pattern:
    line: int
    is_regex: bool
    regex: str  # source of the compiled expression (tolerant view for phrases, plain for re:)


_JOINT = "[ ,]?"
_ATOM_REPEATS = 8
_BOUNDARY_AFTER = "(?![a-z0-9])"


def _atom(char: str, *, last: bool = False) -> str:
    """One letter of a phrase: it may repeat, with a separator between repeats ("diiie", "l l").

    The repeat is bounded and possessive (``{0,8}+``): neighbouring letters of a phrase always
    differ (repeats are squashed), so giving nothing back loses no match, and each try costs a
    few steps however a message repeats a letter ("l l l l …" 2,000 times). Longer unspaced
    runs are shortened in the text first ("diiiiiiiie" → "diie"). The last letter of a phrase
    (or of the words before a *) is not possessive: "goodbye everyone" must end at "goodbye".
    """
    if last:  # may give back a repeat that is really the next word's first letter
        return f"{char}(?:[ ,]?{char}){{0,{_ATOM_REPEATS}}}"
    return f"{char}(?:[ ,]?{char}){{0,{_ATOM_REPEATS}}}+"


def _phrase_regex(phrase: str) -> str:
    """A phrase as a regular expression over the tolerant view (without its word boundaries)."""
    words = phrase.split()
    if words[0] == WILDCARD or words[-1] == WILDCARD:
        raise ValueError("a * stands between two words, so it can't start or end a phrase")
    if any(a == b == WILDCARD for a, b in itertools.pairwise(words)):
        raise ValueError("use one * for up to three words")
    # Stretches of words between wildcards; in each, the letters with repeats squashed.
    stretches: list[str] = []
    for stretch in " ".join(words).split(f" {WILDCARD} "):
        letters = _squash("".join(c for c in tolerant_view(stretch) if c not in " ,"))
        if letters:
            atoms = [_atom(c) for c in letters[:-1]] + [_atom(letters[-1], last=True)]
            stretches.append(_JOINT.join(atoms))
    if not stretches:
        raise ValueError("it has no letters or digits to look for")
    return f"(?:[ ,][a-z0-9]+){{0,{WILDCARD_MAX_WORDS}}}[ ,]".join(stretches)


def parse_patterns(text: str) -> list[Pattern]:
    """The usable patterns of a rule, one a line; raises PatternError naming every bad line.

    Blank lines and lines starting with ``#`` are ignored. ``re:`` starts a regular expression.
    """
    patterns: list[Pattern] = []
    problems: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(COMMENT_PREFIX):
            continue
        if line.lower().startswith(REGEX_PREFIX):
            source = line[len(REGEX_PREFIX) :].strip()
            try:
                compiled = _compile_regex(source)
            except re.error as error:
                problems.append(
                    f"line {number}, “{line}”, isn't a valid regular expression ({error})"
                )
                continue
            if _matches_nothing_specific(compiled):
                problems.append(f"line {number}, “{line}”, would match every message")
                continue
            patterns.append(Pattern(number, True, source))
        else:
            try:
                patterns.append(Pattern(number, False, _phrase_regex(line)))
            except ValueError as error:
                problems.append(f"line {number}, “{line}”: {error}")
    if problems:
        raise PatternError(problems)
    return patterns


_ESCAPE = re.compile(r"\\.")


def _compile_regex(source: str) -> re.Pattern:
    """A ``re:`` pattern. The text it sees is already lower-case, so IGNORECASE (which makes
    ``re`` several times slower) is only added when the pattern itself has capital letters."""
    has_capitals = any(c.isupper() for c in _ESCAPE.sub("", source))
    return re.compile(source, re.IGNORECASE if has_capitals else 0)


def _matches_nothing_specific(compiled: re.Pattern) -> bool:
    """A pattern that can match zero characters matches (almost) every message."""
    for sample in ("", "a", "hello there 123. ok"):
        found = compiled.search(sample)
        if found is not None and found.start() == found.end():
            return True
    return False


# --- The compiled matcher --------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """What the matcher needs of a rule: never its name, never any message."""

    id: int
    kind: str
    action: str
    patterns: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Which rules a message matched. It holds no text of the message."""

    rule_ids: tuple[int, ...] = ()
    kinds: frozenset[str] = field(default_factory=frozenset)
    action: str | None = None  # "hold" beats "queue"; None when nothing matched
    crisis: bool = False

    @property
    def matched(self) -> bool:
        return bool(self.rule_ids)

    def __bool__(self) -> bool:
        return self.matched


NO_MATCH = MatchResult()


class _Rule:
    __slots__ = ("action", "id", "kind", "phrases", "regexes")

    def __init__(self, spec: RuleSpec, phrases: re.Pattern | None, regexes: list[re.Pattern]):
        self.id = spec.id
        self.kind = spec.kind
        # Expressing distress is never a violation: a crisis rule only ever queues.
        self.action = ACTION_QUEUE if spec.kind == KIND_CRISIS else spec.action
        self.phrases = phrases
        self.regexes = regexes


class CompiledMatcher:
    """All enabled rules, compiled once. ``match`` is safe to call from many threads."""

    def __init__(self, specs: Iterable[RuleSpec]):
        self.rules: list[_Rule] = []
        all_phrases: list[str] = []
        for spec in specs:
            try:
                patterns = parse_patterns(spec.patterns)
            except PatternError as error:
                # Saved rules are validated; one that is not (an old import) must not stop the
                # chat. Keep its good lines and say which rule and lines to fix, never the text.
                logger.warning(
                    "flag rule %s has %d unusable pattern line(s); they are skipped",
                    spec.id,
                    len(error.problems),
                )
                patterns = _usable_patterns(spec.patterns)
            phrases = [p.regex for p in patterns if not p.is_regex]
            regexes = [_compile_regex(p.regex) for p in patterns if p.is_regex]
            if not phrases and not regexes:
                continue
            # Longest first, so a longer phrase wins over its own prefix at the same spot.
            phrases.sort(key=len, reverse=True)
            compiled = re.compile(f"(?:{'|'.join(phrases)}){_BOUNDARY_AFTER}") if phrases else None
            self.rules.append(_Rule(spec, compiled, regexes))
            all_phrases.extend(phrases)
        self._phrase_rules = [rule for rule in self.rules if rule.phrases is not None]
        self._regex_rules = [rule for rule in self.rules if rule.regexes]
        self._any_phrase = _any_of(all_phrases) if all_phrases else None

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, text: str) -> MatchResult:
        if not text or not self.rules:
            return NO_MATCH
        base = _base(text)
        hits: dict[int, _Rule] = {}
        if self._regex_rules:
            plain = _SPACES.sub(" ", base)
            for rule in self._regex_rules:
                if any(regex.search(plain) for regex in rule.regexes):
                    hits[rule.id] = rule
        if self._any_phrase is not None:
            for view in _tolerant_views(base):
                self._match_phrases(view, hits)
        if not hits:
            return NO_MATCH
        matched = sorted(hits.values(), key=lambda rule: rule.id)
        return MatchResult(
            rule_ids=tuple(rule.id for rule in matched),
            kinds=frozenset(rule.kind for rule in matched),
            action=ACTION_HOLD
            if any(rule.action == ACTION_HOLD for rule in matched)
            else ACTION_QUEUE,
            crisis=any(rule.kind == KIND_CRISIS for rule in matched),
        )

    def _match_phrases(self, view: str, hits: dict[int, _Rule]) -> None:
        waiting = [rule for rule in self._phrase_rules if rule.id not in hits]
        view = " " + view
        position = 0
        while waiting:
            found = self._any_phrase.search(view, position)
            if found is None:
                return
            start = found.start() + 1  # after the separator
            position = start
            if _negated(view, start):
                continue
            still = []
            for rule in waiting:
                if rule.phrases.match(view, start):
                    hits[rule.id] = rule
                else:
                    still.append(rule)
            waiting = still


def _any_of(phrases: list[str]) -> re.Pattern:
    """One expression finding any of the phrases, factored by first letter.

    Python's ``re`` tries the branches of an alternation one by one at every word start;
    grouping them under their shared first atom makes that about 36 quick checks, not hundreds.
    """
    by_first: dict[str, set[str]] = {}
    for phrase in phrases:
        first = _atom(phrase[0])
        by_first.setdefault(first, set()).add(phrase[len(first) :])
    branches = []
    for first, rests in sorted(by_first.items()):
        if "" in rests:  # a one-letter phrase: the first atom alone is enough
            branches.append(first)
            continue
        ordered = sorted(rests, key=len, reverse=True)
        branches.append(f"{first}(?:{'|'.join(ordered)})")
    # Searched in " " + view: starting with a separator (not a look-behind) lets ``re`` skip
    # straight from one word start to the next.
    return re.compile(f"[ ,](?:{'|'.join(branches)}){_BOUNDARY_AFTER}")


def _usable_patterns(text: str) -> list[Pattern]:
    usable = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        try:
            usable.extend(Pattern(number, p.is_regex, p.regex) for p in parse_patterns(line))
        except PatternError:
            continue
    return usable


# --- The per-process cache -------------------------------------------------------------------

VERSION_CACHE_KEY = "moderation:flag-rules:version"
VERSION_TIMEOUT = 10 * 60  # a lost update (cache down while a rule was saved) heals by then

_lock = threading.Lock()
_current: tuple[str, CompiledMatcher] | None = None


def rules_version() -> str:
    """A token that changes whenever any flag rule changes, shared by every process.

    It lives in Django's cache (Redis). If the cache has none (cleared, expired) a new token is
    made, so every process rebuilds once. If the cache is down, a cheap database fingerprint
    (count and latest edit) stands in: losing Redis must never mean matching stale rules.
    """
    with contextlib.suppress(Exception):  # the cache is an optimisation, never a requirement
        from django.core.cache import cache

        token = cache.get(VERSION_CACHE_KEY)
        if token is None:
            cache.add(VERSION_CACHE_KEY, uuid.uuid4().hex, VERSION_TIMEOUT)
            token = cache.get(VERSION_CACHE_KEY)
        if token is not None:
            return f"cache:{token}"
    from moderation.selectors import flag_rules_fingerprint

    return f"db:{flag_rules_fingerprint()}"


def bump_rules_version() -> None:
    """Tell every process the rules changed: each rebuilds its matcher on its next message."""
    with contextlib.suppress(Exception):
        from django.core.cache import cache

        cache.set(VERSION_CACHE_KEY, uuid.uuid4().hex, VERSION_TIMEOUT)


def get_matcher() -> CompiledMatcher:
    """This process's compiled matcher for the enabled rules, rebuilt when they changed."""
    global _current
    version = rules_version()
    current = _current
    if current is not None and current[0] == version:
        return current[1]
    with _lock:
        current = _current
        if current is not None and current[0] == version:
            return current[1]
        from moderation.selectors import enabled_rule_specs

        matcher = CompiledMatcher(enabled_rule_specs())
        _current = (version, matcher)
        return matcher


def match(text: str) -> MatchResult:
    """Check one message against the enabled flag rules. The text is neither kept nor logged."""
    return get_matcher().match(text)
