"""Facts about the user, taken from what they said, and how much a text matters.

Two extractors give the same `Fact` list: `RuleFactExtractor` works offline
with English patterns and a few German, Spanish and Chinese ones;
`ModelFactExtractor` asks a chat model through structured output and falls
back to the rules when the model fails. Both look only at the user's own
words and keep a fact only when the user states it about themselves: a
question ("is my name Bob?"), a hypothetical ("if I were a pilot"), a negation
("my name is not Bob") or reported speech ("she said my name is Bob") is not
a fact.

`importance_of` scores any text from 1 to 10 without a model; see its
docstring for the rules.

Example:
    ```python
    facts = RuleFactExtractor().extract("My granddaughter is called Mia.", speaker="Ann")
    facts[0].text  # "Ann's granddaughter is called Mia"
    facts[0].attribute  # "granddaughter_name"
    ```

"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "USER_SUBJECT",
    "Fact",
    "FactExtractor",
    "FactList",
    "FactRule",
    "ModelFactExtractor",
    "RuleFactExtractor",
    "fact_sentence",
    "importance_of",
    "is_multi_valued",
]

logger = logging.getLogger(__name__)

USER_SUBJECT = "user"
"""`Fact.subject` when the speaker's name is not known."""


class Fact(BaseModel):
    """One thing true about someone, in a form that can be compared and replaced."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    text: str = Field(min_length=1)
    """The fact in the third person, e.g. "Ann's granddaughter is called Mia"."""
    subject: str = Field(min_length=1)
    """Whom it is about: the speaker's name, or "user"."""
    attribute: str = Field(min_length=1)
    """Normalised key in snake_case, e.g. `granddaughter_name`, `home_town`, `likes`."""
    value: str = Field(min_length=1)
    """The value, e.g. "Mia"."""
    importance: int = Field(default=6, ge=1, le=10)
    """1 (trivial) to 10 (life-changing)."""


class FactList(BaseModel):
    """Facts the user stated about themselves in one message; empty when there are none."""

    facts: list[Fact] = Field(default_factory=list)
    """Each fact the user stated about themselves or their family, pets, home and tastes."""


@runtime_checkable
class FactExtractor(Protocol):
    """Anything that turns what a user said into `Fact`s about them."""

    def extract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return the facts `speaker` states about themselves in `text`. Blocking."""
        ...

    async def aextract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return the facts `speaker` states about themselves in `text`."""
        ...


# Attributes a person can hold several values of at once: a second
# granddaughter's name adds to the first instead of replacing it.
_MULTI_RELATIONS = frozenset({
    "child", "son", "daughter", "grandchild", "grandson", "granddaughter", "brother",
    "sister", "sibling", "cousin", "niece", "nephew", "aunt", "uncle", "friend",
    "neighbour", "pet", "dog", "cat", "bird", "horse", "rabbit", "fish", "hamster", "parrot",
    "grandmother", "grandfather",
})
_MULTI_ATTRIBUTES = frozenset({"likes", "dislikes", "hobby", "hobbies", "language", "languages"})


def is_multi_valued(attribute: str) -> bool:
    """Return True when a person can have several values of `attribute` at once.

    `likes`, `dislikes`, hobbies, languages and the names of relatives and pets
    a person may have several of (`granddaughter_name`, `dog_name`) are
    multi-valued: a new value adds to the old ones. Everything else (`name`,
    `age`, `job`, `lives_in`, `favourite_*`, `wife_name`...) holds one value,
    and a new one replaces the old.
    """
    if attribute in _MULTI_ATTRIBUTES:
        return True
    relation = attribute.removesuffix("_name")
    return relation != attribute and relation.removeprefix("best_") in _MULTI_RELATIONS


def _possessive(subject: str) -> str:
    return f"{subject}'" if subject.endswith("s") else f"{subject}'s"


def _job_sentence(who: str, value: str) -> str:
    if value == "retired":
        return f"{who} is retired"
    article = "an" if value[:1].lower() in "aeiou" else "a"
    if value.split()[0] in ("retired", "former"):
        return f"{who} is {article} {value}"
    return f"{who} works as {article} {value}"


def fact_sentence(subject: str, attribute: str, value: str) -> str:
    """Return a fact as a third-person sentence, e.g. "Ann lives in Leeds".

    Args:
        subject: Whom it is about; "user" reads as "the user".
        attribute: The normalised key.
        value: The value.

    """
    who = "the user" if subject == USER_SUBJECT else subject
    owner = _possessive(who)
    templates = {
        "name": f"{owner} name is {value}",
        "lives_in": f"{who} lives in {value}",
        "home_town": f"{who} is from {value}",
        "birthplace": f"{who} was born in {value}",
        "birth_year": f"{who} was born in {value}",
        "birthday": f"{owner} birthday is {value}",
        "age": f"{who} is {value} years old",
        "job": _job_sentence(who, value),
        "works_at": f"{who} works at {value}",
        "likes": f"{who} likes {value}",
        "dislikes": f"{who} dislikes {value}",
    }
    sentence = templates.get(attribute)
    if sentence is None and attribute.startswith("favourite_"):
        thing = attribute.removeprefix("favourite_").replace("_", " ")
        sentence = f"{owner} favourite {thing} is {value}"
    if sentence is None and attribute.endswith("_name"):
        relation = attribute.removesuffix("_name").replace("_", " ")
        sentence = f"{owner} {relation} is called {value}"
    if sentence is None:
        sentence = f"{owner} {attribute.replace('_', ' ')} is {value}"
    return sentence[0].upper() + sentence[1:]


@dataclass(frozen=True)
class FactRule:
    """One pattern of `RuleFactExtractor`.

    Attributes:
        pattern: Searched in each sentence of the user's text.
        build: Turns a match into `(attribute, value)`, or None to reject it.

    """

    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], tuple[str, str] | None]


_I = re.IGNORECASE
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_BREAK = re.compile(r"[,;，；]|\s(?:but|aber|pero)\s|但是", _I)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|unless|suppose|supposing|imagine|pretend|pretending|wish|whether|let'?s say"
    r"|as if|maybe|perhaps|wenn|falls|ob|si)\b|如果|假如|要是|假设", _I)
_REPORTED = re.compile(
    r"(?<!\bi )(?<!\bi've )\b(?:said|says|told|tells|thinks|thought|claims?|claimed|believes"
    r"|asked|reckons|sagt|sagte|dice|dijo)\b|说", _I)
_NEGATION = re.compile(r"\b(?:not|never|no longer|no|nicht|kein\w*|nunca)\b|n['’]t\b|不|没", _I)
_QUESTION_START = re.compile(
    r"^[\s¿¡\"'“]*(?:what|what's|who|where|when|why|how|which|is|am|are|do|does|did|can|could"
    r"|would|will|should|was|were|have|has|shall|may|isn't|aren't|don't|didn't|wie|wo|wer"
    r"|warum|heiße|heisse|wohne|bin|qué|que|cómo|como|dónde|donde|quién|cuál)\b", _I)
_QUESTION_TAG = re.compile(
    r"^\s*(?:right|isn't it|is it|correct|ok|okay|yes|no|yeah|eh|huh|don't you think|remember"
    r"|oder|nicht wahr|verdad|no es así|对吧|对不对|是吗|是不是)?\s*[?？]+\s*$", _I)
_CJK_QUESTION = re.compile(r"吗|呢|什么|谁|哪|几|多少|怎么")
_QUOTES = re.compile(r"[\"“”«»「」]")


def _is_question(sentence: str, start: int) -> bool:
    before = [m.end() for m in _BREAK.finditer(sentence, 0, start)]
    after = [m.start() for m in _BREAK.finditer(sentence, start)]
    clause = sentence[before[-1] if before else 0 : after[0] if after else len(sentence)]
    if _QUESTION_START.match(clause) or _CJK_QUESTION.search(clause):
        return True
    if not sentence.rstrip().endswith(("?", "？")):
        return False
    # "I live in Leeds, do you?" asks about the listener; "my name is Bob, right?" asks
    # whether the statement itself is true.
    return not after or bool(_QUESTION_TAG.match(sentence[after[-1] + 1 :]))


def _stated(sentence: str, start: int) -> bool:
    prefix = sentence[:start]
    breaks = [m.end() for m in _BREAK.finditer(prefix)]
    clause = prefix[breaks[-1] if breaks else 0 :]
    return not (
        _HYPOTHETICAL.search(prefix)
        or _REPORTED.search(clause)
        or _NEGATION.search(clause)
        or len(_QUOTES.findall(prefix)) % 2
        or _is_question(sentence, start)
    )


def _match(text: str, rules: Sequence[FactRule]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for sentence in _SENTENCE.findall(text):
        for rule in rules:
            for match in rule.pattern.finditer(sentence):
                if _stated(sentence, match.start()):
                    fact = rule.build(match)
                    if fact is not None:
                        found.append(fact)
    return found


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_NAMES = _words(
    "later back tomorrow today tonight now soon sometime anytime whenever when if please a an "
    "the not so too very just here there that this it crazy mad old lucky maybe again what "
    "whatever anything any and but or i i'm me you he she they we on at in up out ok okay silly "
    "honest sure sorry fine good tired also is was has had does did will would can could who "
    "lives loves works said")
_PRONOUNS = _words(
    "it that this you them him her me those these what which when how everything nothing "
    "anything something yours myself there here both") | {"to think", "to say", "to be"}
_VALUE_END = re.compile(
    r"\s+(?:and|&|und|y)\s+(?=(?:i|i'm|i've|my|we|it|he|she|they|you|ich|yo)\b)"
    r"|\s+(?:but|because|cause|since|so|though|although|which|where|who|while|except|unless"
    r"|aber|weil|pero|porque|que)\b|\s+-\s", _I)
_TRAILING = re.compile(
    r"(?:\s+(?:now|nowadays|currently|these days|at the moment|right now|anymore|too|as well"
    r"|also|a lot|very much|so much|really|recently|last (?:year|month|week|summer|winter|spring"
    r"|autumn)|(?:a few|\w+) (?:years|months|weeks) ago|in \d{4}|jetzt|ahora|mucho))+\s*$", _I)
_MONTH = re.compile(
    r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|januar|februar|märz|mai|juni"
    r"|juli|oktober|dezember|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre"
    r"|octubre|noviembre|diciembre)\w*|月", _I)
_RELATIVE_DATE = re.compile(r"\b(?:next|this|last|tomorrow|today|soon|coming)\b", _I)


def _name(raw: str) -> str | None:
    words: list[str] = []
    for word in raw.split():
        word = re.sub(r"['’]s$", "", word)
        if word.casefold() in _STOP_NAMES:
            break
        words.append(word)
    if not words:
        return None
    value = " ".join(words)
    return value[0].upper() + value[1:]


def _text(raw: str, max_words: int = 8) -> str | None:
    value = _VALUE_END.split(" ".join(raw.split()), maxsplit=1)[0]
    value = _TRAILING.sub("", value).strip(" \"'“”‘’.!?")
    words = value.split()
    if not words or len(words) > max_words or _NEGATION.match(value):
        return None
    if words[0].casefold() in _PRONOUNS or " ".join(words[:2]).casefold() in _PRONOUNS:
        return None
    value = re.sub(r"\bmy\b", "their", value, flags=_I)
    return re.sub(r"\bmyself\b|\bme\b", "them", value, flags=_I)


def _cjk(raw: str) -> str | None:
    value = re.sub(r"(?:来的|了|呢|啊|呀|吧|哦|的)+$", "", raw.strip())
    if not value or value[0] in "你他她它我了过着什谁":
        return None
    return value


_RELATIONS = {
    "best friend": "best_friend", "granddaughter": "granddaughter", "grandson": "grandson",
    "grandchild": "grandchild", "grandkid": "grandchild", "grandmother": "grandmother",
    "grandfather": "grandfather", "grandma": "grandmother", "grandpa": "grandfather",
    "husband": "husband", "wife": "wife", "partner": "partner", "spouse": "spouse",
    "boyfriend": "boyfriend", "girlfriend": "girlfriend", "fiancée": "fiance", "fiance": "fiance",
    "fiancé": "fiance", "son": "son", "daughter": "daughter", "child": "child", "kid": "child",
    "baby": "baby", "brother": "brother", "sister": "sister", "sibling": "sibling",
    "mother": "mother", "mom": "mother", "mum": "mother", "mommy": "mother", "father": "father",
    "dad": "father", "daddy": "father", "aunt": "aunt", "uncle": "uncle", "cousin": "cousin",
    "niece": "niece", "nephew": "nephew", "friend": "friend", "neighbour": "neighbour",
    "neighbor": "neighbour", "boss": "boss", "doctor": "doctor", "carer": "carer",
    "caregiver": "carer", "nurse": "nurse", "dog": "dog", "puppy": "dog", "cat": "cat",
    "kitten": "cat", "pet": "pet", "bird": "bird", "parrot": "parrot", "budgie": "bird",
    "horse": "horse", "rabbit": "rabbit", "bunny": "rabbit", "hamster": "hamster", "fish": "fish",
}
_REL = "(?P<r>" + "|".join(sorted(map(re.escape, _RELATIONS), key=len, reverse=True)) + ")"
_NAME = r"(?P<v>[^\W\d_][\w'’-]*(?:\s+(?-i:[A-Z])[\w'’-]*){0,2})"
_APPOSITIVE = r"(?P<v>(?-i:[A-Z])[\w'’-]+(?:\s+(?-i:[A-Z])[\w'’-]+)?)"
_REST = r"(?P<v>[^,.;!?\n]+)"
_CJK_REST = r"(?P<v>[^\s，。！？,.!?；;、]+)"
_I_AM = r"\bi(?:'m|’m| am|m)\s+"
_JOBS = _words(
    "teacher nurse doctor engineer farmer pilot driver baker chef cook cleaner lawyer accountant "
    "programmer developer designer writer author artist musician student scientist mechanic "
    "electrician plumber carpenter builder soldier officer firefighter dentist pharmacist vet "
    "librarian cashier waiter waitress secretary manager salesman saleswoman shopkeeper banker "
    "journalist photographer painter tailor miner fisherman sailor professor lecturer "
    "researcher midwife carer caregiver therapist psychologist surgeon architect translator "
    "hairdresser barber butcher gardener housewife homemaker blacksmith merchant guard knight "
    "priest vicar postman consultant analyst clerk receptionist technician actor actress "
    "singer dancer coach athlete entrepreneur pensioner retiree nanny tutor editor welder "
    "janitor courier bartender barista paramedic administrator policeman policewoman")


# "I'm Margaret" introduces; "I'm English" or "I'm Catholic" does not.
_NOT_NAMES = _words(
    "english british scottish irish welsh french german spanish italian american canadian "
    "chinese japanese korean indian australian dutch polish russian swedish danish norwegian "
    "greek turkish mexican brazilian african european asian vietnamese thai filipino "
    "portuguese swiss austrian belgian catholic christian jewish muslim hindu buddhist "
    "protestant atheist ok okay fine good sorry here back home done ready")


def _introduced(match: re.Match[str]) -> tuple[str, str] | None:
    if match["v"].split()[0].casefold() in _NOT_NAMES:
        return None
    name = _name(match["v"])
    return ("name", name) if name else None


def _job(match: re.Match[str]) -> tuple[str, str] | None:
    words = match["v"].casefold().split()
    for index, word in enumerate(words):
        if word in _JOBS:
            return "job", " ".join(words[: index + 1])
    return None


def _relation(match: re.Match[str]) -> tuple[str, str] | None:
    name = _name(match["v"])
    return (f"{_RELATIONS[match['r'].casefold()]}_name", name) if name else None


def _born(match: re.Match[str]) -> tuple[str, str] | None:
    value = _text(match["v"], 5)
    if value is None:
        return None
    if re.fullmatch(r"\d{4}", value):
        return "birth_year", value
    return ("birthday" if _MONTH.search(value) else "birthplace"), value


def _birthday(match: re.Match[str]) -> tuple[str, str] | None:
    value = _text(match["v"], 6)
    ok = value is not None and _MONTH.search(value) and not _RELATIVE_DATE.search(value)
    return ("birthday", value) if ok and value else None


def _age(match: re.Match[str]) -> tuple[str, str] | None:
    return ("age", match["v"]) if 1 <= int(match["v"]) <= 120 else None


def _favourite(match: re.Match[str]) -> tuple[str, str] | None:
    thing = re.sub(r"\bcolor\b", "colour", match["t"].casefold()).replace(" ", "_")
    value = _text(match["v"], 6)
    return (f"favourite_{thing}", value) if value else None


def _age_any(match: re.Match[str]) -> tuple[str, str] | None:
    value = match["v"] or match["v2"] or match["v3"]
    return ("age", value) if 1 <= int(value) <= 120 else None


def _rule(pattern: str, attribute: str, clean: Callable[[str], str | None]) -> FactRule:
    def build(match: re.Match[str]) -> tuple[str, str] | None:
        value = clean(match["v"])
        return (attribute, value) if value else None

    return FactRule(re.compile(pattern, _I), build)


_RULES: tuple[FactRule, ...] = (
    _rule(r"\b(?:my name is|my name's|my name’s|i am called|i'm called|i’m called|call me"
          r"|i go by|ich heiße|ich heisse|mein name ist|me llamo|mi nombre es)\s+" + _NAME,
          "name", _name),
    _rule(r"(?:我叫|我的名字是|我的名字叫)" + _CJK_REST, "name", _cjk),
    FactRule(re.compile(_I_AM + r"(?P<v>(?-i:[A-Z])[\w'’-]+(?:\s+(?-i:[A-Z])[\w'’-]+)?)"
                        r"(?=\s*(?:[,.!;]|$|and\b|from\b))", _I), _introduced),
    FactRule(re.compile(r"\bmy\s+" + _REL + r"(?:'s|’s)\s+name\s+is\s+" + _NAME, _I), _relation),
    FactRule(re.compile(r"\bmy\s+" + _REL + r"\s+is\s+(?:called|named)\s+" + _NAME, _I),
             _relation),
    FactRule(re.compile(r"\bmy\s+" + _REL + r",?\s+" + _APPOSITIVE, _I), _relation),
    FactRule(re.compile(
        r"\bi(?:\s+have(?:\s+got)?|'ve\s+got|’ve\s+got|\s+got|\s+own)\s+(?:an?|one|two|three)?"
        r"\s*(?:(?:little|old|young|big|small|new|lovely|black|white|ginger|grey|gray|tabby"
        r"|sweet|cute)\s+)*" + _REL + r"\s+(?:called|named)\s+" + _NAME, _I), _relation),
    _rule(r"\bi\s+(?:live|now live|still live|am living|'m living|’m living|moved|have moved"
          r"|'ve moved|’ve moved|just moved)\s+(?:in|to)\s+" + _REST, "lives_in",
          lambda raw: _text(raw, 6)),
    _rule(r"\b(?:ich\s+(?:wohne|lebe)\s+in|(?:yo\s+)?vivo\s+en)\s+" + _REST, "lives_in",
          lambda raw: _text(raw, 6)),
    _rule(r"我(?:现在)?住在" + _CJK_REST, "lives_in", _cjk),
    _rule(r"(?:" + _I_AM + r"(?:originally\s+)?from|\bi\s+(?:come|came)\s+from|\bi\s+grew\s+up"
          r"\s+in|\bich\s+komme\s+aus|\bsoy\s+de)\s+" + _REST, "home_town",
          lambda raw: _text(raw, 6)),
    _rule(r"我(?:来自|是从)" + _CJK_REST, "home_town", _cjk),
    FactRule(re.compile(r"\bi\s+was\s+born\s+(?:on|in)\s+(?:the\s+)?" + _REST, _I), _born),
    FactRule(re.compile(r"\b(?:my\s+birthday(?:\s+is|'s|’s)|mein\s+geburtstag\s+ist|mi\s+"
                        r"cumpleaños\s+es)\s+(?:on\s+|am\s+|el\s+)?" + _REST, _I), _birthday),
    _rule(r"我的生日是" + _CJK_REST, "birthday", _cjk),
    _rule(r"\bi\s+work\s+as\s+(?:an?\s+)?(?P<v>[^,.;!?\n]+?)(?=\s+(?:at|in|for|with|on)\s|[,.;!?"
          r"\n]|$)", "job", lambda raw: _text(raw, 4)),
    FactRule(re.compile(_I_AM + r"(?:an?\s+)(?P<v>(?:[\w-]+\s+){0,2}[\w-]+)", _I), _job),
    _rule(_I_AM + r"(?:now\s+)?(?P<v>retired)\b", "job", str.lower),
    _rule(r"\bi\s+work\s+(?:at|for)\s+" + _REST, "works_at", lambda raw: _text(raw, 6)),
    FactRule(re.compile(_I_AM + r"(?P<v>\d{1,3})(?:\s*(?:years?|yrs?)(?:\s+old)?\b|(?=\s*(?:"
                        r"[,.!;]|$|and\b)))", _I), _age),
    FactRule(re.compile(r"\bi\s+(?:just\s+)?turned\s+(?P<v>\d{1,3})\b|\bich\s+bin\s+(?P<v2>"
                        r"\d{1,3})\s+jahre\b|\btengo\s+(?P<v3>\d{1,3})\s+años\b", _I),
             _age_any),
    FactRule(re.compile(r"我(?:今年)?(?P<v>\d{1,3})岁"), _age),
    _rule(r"\bi\s+(?:really\s+|also\s+|just\s+|absolutely\s+|do\s+)?(?:like|love|enjoy|adore)"
          r"\s+" + _REST, "likes", _text),
    _rule(r"\b(?:ich\s+(?:mag|liebe)|me\s+(?:gusta|gustan|encanta|encantan))\s+" + _REST,
          "likes", _text),
    _rule(r"我(?:很|非常|也|真的|最)?喜欢" + _CJK_REST, "likes", _cjk),
    _rule(r"\bi\s+(?:really\s+|also\s+)?(?:hate|dislike|detest|loathe|can't stand|can’t stand"
          r"|cannot stand|don't like|don’t like|do not like|don't enjoy|don’t enjoy)\s+" + _REST,
          "dislikes", _text),
    _rule(r"\bno\s+me\s+gustan?\s+" + _REST, "dislikes", _text),
    _rule(r"我(?:很|也|真的)?(?:不喜欢|讨厌)" + _CJK_REST, "dislikes", _cjk),
    FactRule(re.compile(r"\bmy\s+(?:favourite|favorite|fave|fav)\s+(?P<t>[a-z]+(?:\s+[a-z]+)?)"
                        r"\s+(?:is|are|'s|’s)\s+" + _REST, _I), _favourite),
)


_RULE_IMPORTANCE = {
    "name": 9, "age": 7, "birthday": 8, "birth_year": 7, "birthplace": 6, "lives_in": 7,
    "home_town": 6, "job": 6, "works_at": 6, "likes": 5, "dislikes": 5,
}


class RuleFactExtractor:
    """Extract facts with patterns, offline and instantly.

    Understands, in English: my name is / I'm called / call me / I'm <Name>; I live in /
    I'm from / I was born in; I work as / I'm a <job> / I'm retired; my
    <relative or pet> is called X / my <relative>'s name is X / my <relative>
    X; I have a dog called X; I like / love / enjoy X; I hate / don't like X;
    my favourite X is Y; I'm N (years old); my birthday is ... . In German:
    ich heiße X, mein Name ist X, ich wohne / lebe in X, ich komme aus X. In
    Spanish: me llamo X, mi nombre es X, vivo en X, soy de X, me gusta X. In
    Chinese: 我叫X, 我的名字是X, 我住在X, 我来自X, 我喜欢X, 我不喜欢X.

    Questions, hypotheticals, negations and reported speech yield nothing.

    Args:
        rules: Extra `FactRule`s, tried after the built-in ones.

    Example:
        ```python
        RuleFactExtractor().extract("I'm 82 and I live in Leeds.", speaker="Ann")
        # [Fact(text="Ann is 82 years old", ...), Fact(text="Ann lives in Leeds", ...)]
        ```

    """

    def __init__(self, *, rules: Sequence[FactRule] = ()) -> None:
        self._rules = (*_RULES, *rules)

    def extract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return the facts `speaker` states about themselves in `text`.

        Args:
            text: What the user said.
            speaker: The user's name, used as the subject; "user" when None.

        """
        subject = speaker.strip() if speaker and speaker.strip() else USER_SUBJECT
        facts: list[Fact] = []
        seen: set[tuple[str, str]] = set()
        for attribute, value in _match(text, self._rules):
            key = (attribute, value.casefold())
            if key in seen:
                continue
            seen.add(key)
            importance = _RULE_IMPORTANCE.get(attribute, 5)
            if attribute.endswith("_name"):
                importance = 8
            facts.append(Fact(
                text=fact_sentence(subject, attribute, value),
                subject=subject,
                attribute=attribute,
                value=value,
                importance=importance,
            ))
        return facts

    async def aextract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return `extract(text, speaker=speaker)`; regular expressions need no thread."""
        return self.extract(text, speaker=speaker)


_DEFAULT_FALLBACK = RuleFactExtractor()

_INSTRUCTION = """\
Extract facts the user states about themselves in their message: their name, \
age, birthday, where they live or come from, job, family members' and pets' \
names, health, likes, dislikes and favourites. Only what the user asserts as \
true about themselves or their own family and pets: never from questions, \
hypotheticals, jokes, negations or things other people said. Write each fact \
in the third person about {subject} (e.g. "{owner} granddaughter is called \
Mia"), set subject to "{subject}", attribute to a short snake_case key (name, \
age, birthday, lives_in, home_town, job, likes, dislikes, favourite_drink, \
granddaughter_name, dog_name, ...), value to the plain value, and importance \
from 1 (trivia) to 10 (names, family, health, life events). Return an empty \
list when there is nothing."""


class ModelFactExtractor:
    """Extract facts with a chat model through structured output (`FactList`).

    The model is asked once per message, with `with_structured_output`. When
    the call fails or returns nothing parseable, the `fallback` extractor
    answers instead, so a flaky model never loses the facts the rules can see.

    Args:
        model: Any LangChain chat model that supports tool calling.
        fallback: Used when the model call fails; `RuleFactExtractor()` by default,
            None to return no facts instead.

    Example:
        ```python
        from langchain.chat_models import init_chat_model

        extractor = ModelFactExtractor(init_chat_model("openai:gpt-4o-mini"))
        facts = await extractor.aextract("My dog Rex is twelve.", speaker="Ann")
        ```

    """

    def __init__(
        self, model: BaseChatModel, *, fallback: FactExtractor | None = _DEFAULT_FALLBACK
    ) -> None:
        self.model = model
        self.fallback = fallback

    def _messages(self, text: str, subject: str) -> list[tuple[str, str]]:
        who = "the user" if subject == USER_SUBJECT else subject
        instruction = _INSTRUCTION.format(subject=subject, owner=_possessive(who).capitalize())
        return [("system", instruction), ("human", text)]

    def _parse(self, output: object) -> list[Fact]:
        if isinstance(output, dict):
            output = FactList.model_validate(output)
        if not isinstance(output, FactList):
            raise TypeError(f"expected FactList, got {type(output).__name__}")
        return [fact for fact in output.facts if fact.value.strip()]

    def extract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return the facts `speaker` states about themselves in `text`. Blocking."""
        subject = speaker.strip() if speaker and speaker.strip() else USER_SUBJECT
        try:
            runnable = self.model.with_structured_output(FactList)
            return self._parse(runnable.invoke(self._messages(text, subject)))
        except Exception as exc:
            return self._fall_back(exc, text, speaker)

    async def aextract(self, text: str, *, speaker: str | None = None) -> list[Fact]:
        """Return the facts `speaker` states about themselves in `text`."""
        subject = speaker.strip() if speaker and speaker.strip() else USER_SUBJECT
        try:
            runnable = self.model.with_structured_output(FactList)
            return self._parse(await runnable.ainvoke(self._messages(text, subject)))
        except Exception as exc:
            return self._fall_back(exc, text, speaker)

    def _fall_back(self, exc: Exception, text: str, speaker: str | None) -> list[Fact]:
        # Any failure of the model (network, refusal, malformed output) is ours
        # to absorb: fact extraction runs after the reply and must not fail a turn.
        logger.warning("fact extraction by model failed (%s); using fallback", type(exc).__name__)
        if self.fallback is None:
            return []
        return self.fallback.extract(text, speaker=speaker)


# Words that carry weight in a life, with the points each group adds.
_WEIGHTS: tuple[tuple[int, re.Pattern[str]], ...] = tuple(
    (points, re.compile(pattern, re.IGNORECASE))
    for points, pattern in (
        (3, r"\b(?:my name|called|named|call me|ich heiße|me llamo)\b|我叫|名字"),
        (3, r"\b(?:wife|husband|partner|son|daughter|grand(?:son|daughter|child|children|kids?)"
            r"|mother|father|mum|mom|dad|brother|sister|family|children|kids?|baby|niece|nephew"
            r"|grandma|grandpa|granny|enkel|tochter|sohn|hija|hijo|nieta|nieto)s?\b"
            r"|孙女|孙子|女儿|儿子|妻子|丈夫|妈妈|爸爸"),
        (3, r"\b(?:doctor|hospital|pain|medication|medicine|pills?|diagnos\w*|surgery|operation"
            r"|fell|fall|dizzy|sick|ill|cancer|heart|stroke|dementia|blood pressure|diabetes"
            r"|arzt|krankenhaus|médico|hospital)\b|医院|医生|生病|药"),
        (3, r"\b(?:died|dead|passed away|funeral|grief|miss (?:him|her|them)|lonely|alone"
            r"|scared|afraid|terrified|furious|hate you|love you|in love|loved one|heartbroken"
            r"|cried|crying|wedding|married"
            r"|divorce\w*|pregnant|born|betray\w*|stole|stolen|killed|murder\w*|promise\w*)\b"
            r"|去世|孤独|害怕"),
        (2, r"\b(?:birthday|anniversary|january|february|march|april|(?-i:May)|june|july|august"
            r"|september|october|november|december|\d{1,2}(?:st|nd|rd|th)|\d{4}|years? old"
            r"|geburtstag|cumpleaños)\b|生日|\d+岁"),
        (1, r"\b(?:live|lives|moved|work|job|retired|favourite|favorite|always|never)\b"),
    )
)
_SMALL_TALK = re.compile(
    r"^\W*(?:hi|hello|hey|hiya|yo|ok(?:ay)?|thanks?|thank you|cheers|bye|goodbye|good (?:morning|"
    r"night|evening|afternoon)|how are you|what's up|yes|no|yeah|nope|sure|cool|nice|lol|haha"
    r"|hmm+|great|fine|good|你好|谢谢|再见|hallo|danke|hola|gracias)\W*$",
    re.IGNORECASE,
)


def importance_of(text: str) -> int:
    """Score how much a text matters to remember, from 1 to 10, without a model.

    Rules, applied to the whole text:

    - Small talk alone ("hi", "thanks", "how are you?") scores 1; an empty text 1.
    - Otherwise start at 3; each group found adds its points once:
      names and being called something (+3), family (+3), health (+3),
      strong emotion, life events and grave deeds such as death, love,
      loneliness, weddings, theft (+3), dates and ages (+2), home, work and
      habits (+1).
    - A message of more than 40 words adds 1; the total is capped at 10.

    Args:
        text: Any text, usually what the user said.

    """
    stripped = text.strip()
    if not stripped or _SMALL_TALK.match(stripped):
        return 1
    score = 3 + sum(points for points, pattern in _WEIGHTS if pattern.search(stripped))
    if len(stripped.split()) > 40:
        score += 1
    return max(1, min(10, score))
