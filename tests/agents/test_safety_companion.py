"""`companion` and `community` on messages in: crisis, emergency, scam, dosing, honesty."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from personae.agents.safety import (
    Alert,
    LocaleResources,
    Verdict,
    matching_reminders,
    medication_reply,
    prompt_lines,
    screen_in,
)
from personae.personas.model import Persona


def companion(language: str = "en", profile: str = "companion") -> Persona:
    return Persona(
        id="rosie",
        name="Rosie",
        safety={"profile": profile},
        speech={"language": language},
    )


def caught(text: str, category: str, *, language: str = "en", **kwargs: object) -> Verdict:
    verdict = screen_in(companion(language), text, **kwargs)  # type: ignore[arg-type]
    assert verdict.category == category, (text, verdict)
    assert not verdict.passed and verdict.reply
    return verdict


# -- crisis -----------------------------------------------------------------------------

CRISIS = {
    "en": [
        "I want to kill myself.",
        "honestly i dont want to live anymore",
        "I've been thinking about ending my life.",
        "Everyone would be better off without me.",
        "I wish I could go to sleep and never wake up.",
        "I've been saving up my sleeping pills for it.",
    ],
    "de": [
        "Ich will mich umbringen.",
        "Ich will nicht mehr leben.",
        "Ich denke oft an Selbstmord.",
        "Alle wären ohne mich besser dran.",
        "Ich habe schon Schlaftabletten gesammelt.",
    ],
    "es": [
        "Me quiero matar.",
        "No quiero vivir más.",
        "Pienso en suicidarme todos los días.",
        "Todos estarían mejor sin mí.",
        "Ya escribí mi carta de despedida.",
    ],
    "zh": [
        "我想自杀",
        "我真的不想活了",
        "活着没意思",
        "家人没有我会过得更好",
        "我已经写好了遗书",
    ],
}


@pytest.mark.parametrize(
    ("language", "text"), [(lang, text) for lang, texts in CRISIS.items() for text in texts]
)
def test_crisis_wording_in_every_language_gets_support_and_an_alert(
    language: str, text: str
) -> None:
    verdict = caught(text, "crisis", language=language)
    assert verdict.action == "support"
    assert verdict.topic == "crisis" and "crisis" in verdict.flags
    assert verdict.alert is not None and verdict.alert.kind == "crisis"
    assert verdict.alert.severity in ("warning", "critical")
    assert verdict.locale is not None and verdict.locale.startswith(language)
    assert verdict.pack_version is not None and verdict.pack_version.startswith(f"{language}@")


def test_active_and_preparation_wording_is_critical_passive_a_warning() -> None:
    assert caught("I've been saving up my pills.", "crisis").alert == Alert("crisis", "critical")
    assert caught("I want to kill myself.", "crisis").alert == Alert("crisis", "critical")
    assert caught("I wish I were dead.", "crisis").alert == Alert("crisis", "warning")


@pytest.mark.parametrize(
    ("locale", "language", "text", "resource"),
    [
        (None, "en", "I want to die", "988"),
        ("en-GB", "en", "I want to die", "116 123"),
        ("en-IE", "en", "I want to die", "Samaritans"),
        (None, "de", "Ich will mich umbringen", "0800 111 0 111"),
        (None, "es", "Quiero suicidarme", "024"),
        (None, "zh", "我想自杀", "010-82951332"),
        ("es-US", "es", "Quiero suicidarme", "988"),
    ],
)
def test_the_crisis_reply_names_the_crisis_line_of_the_locale(
    locale: str | None, language: str, text: str, resource: str
) -> None:
    verdict = screen_in(companion(language), text, locale=locale)
    assert verdict.action == "support"
    assert verdict.reply is not None and resource in verdict.reply
    assert "{" not in verdict.reply


def test_a_german_message_to_an_english_persona_is_answered_in_german() -> None:
    verdict = screen_in(companion("en"), "Ich will nicht mehr leben.")
    assert verdict.action == "support" and verdict.locale == "de-DE"
    assert verdict.reply is not None and "TelefonSeelsorge" in verdict.reply


def test_the_deployment_can_configure_its_own_crisis_line() -> None:
    ours = {"GB": LocaleResources(emergency="999", crisis_line="our care team on 0800 000 000")}
    verdict = screen_in(companion(), "I want to die", locale="en-GB", resources=ours)
    assert verdict.reply is not None and "our care team on 0800 000 000" in verdict.reply
    assert "116 123" not in verdict.reply


def test_the_conversation_goes_on_after_a_crisis_reply() -> None:
    persona = companion()
    first = screen_in(persona, "I want to end my life.")
    assert first.action == "support" and first.alert is not None
    # The next, ordinary message reaches the model, with care asked for.
    later = screen_in(persona, "My daughter is coming on Sunday.",
                      user_history=["I want to end my life."],
                      history=["I want to end my life.", first.reply or ""])
    assert later.passed and later.topic == "crisis" and later.alert is None


def test_one_alert_per_crisis_and_a_different_line_the_second_time() -> None:
    persona = companion()
    said = ["I want to kill myself."]
    first = screen_in(persona, said[0])
    again = screen_in(persona, "I really want to kill myself.", user_history=said,
                      history=[said[0], first.reply or ""])
    assert again.action == "support" and again.alert is None
    assert again.reply != first.reply


def test_two_mild_messages_add_up_to_a_crisis() -> None:
    persona = companion()
    one = screen_in(persona, "I feel like such a burden.")
    assert one.passed and one.topic == "crisis" and one.ambiguous
    two = screen_in(persona, "What's the point of anything?",
                    user_history=["I feel like such a burden."])
    assert two.action == "support" and two.rule == "conversation"
    assert two.alert == Alert("crisis", "warning")
    assert two.score >= 1.0 > one.score


def test_mild_messages_far_apart_do_not_add_up() -> None:
    persona = companion()
    history = ["I feel like such a burden.", "We had soup.", "The garden is lovely.",
               "My cat is asleep.", "The news was boring."]
    verdict = screen_in(persona, "What's the point of anything?", user_history=history)
    assert verdict.action == "pass" and verdict.ambiguous


def test_a_mild_message_alone_reaches_the_model() -> None:
    verdict = screen_in(companion(), "I'm feeling so alone these days")
    assert verdict.passed and verdict.reply is None


@pytest.mark.parametrize(
    "text",
    [
        "this traffic is killing me",
        "I nearly killed myself laughing at that show.",
        "I'm not suicidal, just tired.",
        "I want to die at home, not in a hospital.",
        "Der Verkehr bringt mich um.",
        "¡Me muero de risa!",
        "笑死我了",
        "我想死你了！",
    ],
)
def test_figures_of_speech_are_not_a_crisis(text: str) -> None:
    verdict = screen_in(companion(), text)
    assert verdict.passed and verdict.category is None


def test_community_answers_a_crisis_too() -> None:
    verdict = screen_in(companion(profile="community"), "I want to kill myself")
    assert verdict.action == "support" and verdict.profile == "community"


# -- emergencies --------------------------------------------------------------------------

EMERGENCIES = [
    ("en", "I have a crushing pain in my chest.", "911", "emergency"),
    ("en", "I can't breathe.", "911", "emergency"),
    ("en", "I think my husband is having a stroke.", "911", "emergency"),
    ("en", "His face is drooping and his speech is slurred.", "911", "emergency"),
    ("en", "I fell and I can't get up.", "911", "fall"),
    ("de", "Ich habe starke Schmerzen in der Brust.", "112", "emergency"),
    ("de", "Ich bin gestürzt und komme nicht hoch.", "112", "fall"),
    ("es", "No puedo respirar.", "112", "emergency"),
    ("es", "Me he caído y no me puedo levantar.", "112", "fall"),
    ("zh", "我胸口好痛", "120", "emergency"),
    ("zh", "我摔倒了，起不来", "120", "fall"),
]


@pytest.mark.parametrize(("language", "text", "number", "kind"), EMERGENCIES)
def test_emergencies_get_the_emergency_number_and_an_alert(
    language: str, text: str, number: str, kind: str
) -> None:
    verdict = caught(text, "emergency", language=language)
    assert verdict.action == "emergency"
    assert verdict.reply is not None and number in verdict.reply
    assert verdict.alert is not None and verdict.alert.kind == kind
    assert verdict.alert.severity == "critical"


def test_the_emergency_number_follows_the_locale() -> None:
    assert "999" in (screen_in(companion(), "I can't breathe", locale="en-GB").reply or "")


def test_a_second_emergency_message_does_not_alert_again() -> None:
    verdict = screen_in(companion(), "I still can't breathe",
                        user_history=["I can't breathe"])
    assert verdict.action == "emergency" and verdict.alert is None


@pytest.mark.parametrize(
    "text",
    ["I fell asleep in my chair.", "I fell in love with that song.", "I just can't fall asleep",
     "You nearly gave me a heart attack!", "My grandfather had a stroke in 1990."],
)
def test_everyday_words_are_not_emergencies(text: str) -> None:
    assert screen_in(companion(), text).passed


def test_community_does_not_screen_for_emergencies() -> None:
    assert screen_in(companion(profile="community"), "I can't breathe").passed


# -- scams --------------------------------------------------------------------------------

SCAMS = [
    ("en", "Microsoft called, my computer has a virus and they want remote access."),
    ("en", "A man said my grandson is in jail and needs bail money, don't tell his parents."),
    ("en", "The caller wants me to pay with gift cards."),
    ("en", "I won the lottery but I have to pay a processing fee first."),
    ("en", "The IRS called and said I will be arrested unless I pay today."),
    ("en", "A woman I met online needs money for her plane ticket."),
    ("de", "Mein Enkel hatte einen Unfall und braucht sofort Geld für die Kaution."),
    ("de", "Ich soll mit Gutscheinkarten bezahlen."),
    ("de", "Die Bank hat angerufen und will meine PIN."),
    ("es", "Gané la lotería pero tengo que pagar una comisión."),
    ("es", "Mi nieto tuvo un accidente y necesita dinero para la fianza."),
    ("es", "Me llamó el soporte técnico de Microsoft, dicen que tengo un virus."),
    ("zh", "说我中奖了，要先交手续费"),
    ("zh", "自称是公安局的人要我转到安全账户"),
    ("zh", "有人说我孙子出车祸了，要我马上转账"),
]


@pytest.mark.parametrize(("language", "text"), SCAMS)
def test_scams_get_a_warning_that_never_helps_to_pay(language: str, text: str) -> None:
    verdict = caught(text, "scam", language=language)
    assert verdict.action == "warn" and verdict.topic == "scam"
    assert verdict.alert == Alert("scam", "warning")


def test_the_scam_warning_says_not_to_pay() -> None:
    reply = caught("They want me to pay with gift cards.", "scam").reply or ""
    assert "Don't send money, gift cards or bank details" in reply


@pytest.mark.parametrize(
    "text",
    ["I bought a gift card for my granddaughter's birthday.",
     "My grandson called to say he got a new job.", "Microsoft Word keeps crashing."],
)
def test_money_and_family_talk_is_not_a_scam(text: str) -> None:
    assert screen_in(companion(), text).category is None


def test_money_words_alone_are_ambiguous_not_a_scam() -> None:
    verdict = screen_in(companion(), "Should I use Western Union for this?")
    assert verdict.passed and verdict.topic == "scam" and verdict.ambiguous


# -- medication ---------------------------------------------------------------------------

MEDICATION = [
    ("en", "How many pills should I take?"),
    ("en", "Can I take two ibuprofen with my metformin?"),
    ("en", "I don't remember if I took my pills."),
    ("de", "Wie viele Tabletten soll ich nehmen?"),
    ("de", "Darf ich zwei Ibuprofen zusammen nehmen?"),
    ("es", "¿Cuántas pastillas debo tomar?"),
    ("es", "No me acuerdo si tomé mis pastillas."),
    ("zh", "这个药要吃几片？"),
    ("zh", "我不记得有没有吃过药"),
]


@pytest.mark.parametrize(("language", "text"), MEDICATION)
def test_dosing_questions_are_referred_to_a_doctor_or_pharmacist(
    language: str, text: str
) -> None:
    verdict = caught(text, "medication", language=language)
    assert verdict.action == "refer" and verdict.topic == "medication"
    assert verdict.alert is None


@pytest.mark.parametrize(
    "text",
    ["I take my pills with breakfast.", "Can I take the bus into town?",
     "How many grandchildren do you have?"],
)
def test_mentioning_pills_is_not_a_dosing_question(text: str) -> None:
    assert screen_in(companion(), text).passed


REMINDERS = [
    "Metformin 500 mg: one tablet with breakfast and one with dinner.",
    "Eye drops (Latanoprost): one drop in each eye at 9 pm.",
    "Ramipril 5 mg: one capsule in the morning.",
]


def test_matching_reminders_picks_the_named_medicine() -> None:
    assert matching_reminders("How many metformine do I take?", REMINDERS) == [REMINDERS[0]]
    assert matching_reminders("When are my eye drops?", REMINDERS) == [REMINDERS[1]]
    assert matching_reminders("Can I double my aspirin?", REMINDERS) == []


def test_a_question_naming_no_medicine_gets_all_reminders() -> None:
    assert matching_reminders("How many pills should I take today?", REMINDERS) == REMINDERS
    assert matching_reminders("How many pills?", REMINDERS, limit=2) == REMINDERS[:2]


def test_the_medication_reply_quotes_reminders_word_for_word_then_refers() -> None:
    question = "How much ramipril should I take?"
    verdict = screen_in(companion(), question)
    reply = medication_reply(verdict, question, REMINDERS)
    assert "Ramipril 5 mg: one capsule in the morning" in reply
    assert "Metformin" not in reply
    assert reply.endswith(verdict.reply or "")
    assert medication_reply(verdict, "How much aspirin?", REMINDERS) == verdict.reply


def test_the_medication_reply_is_in_the_persons_language() -> None:
    question = "Wie viele Tabletten Metformin soll ich nehmen?"
    verdict = screen_in(companion("de"), question)
    reply = medication_reply(verdict, question, ["Metformin 500 mg morgens"])
    assert reply.startswith("Deine Erinnerung sagt: „Metformin 500 mg morgens“")


# -- honesty ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "Are you a real person?"), ("en", "Am I talking to a robot?"),
     ("en", "are you human or a computer"), ("de", "Bist du ein echter Mensch?"),
     ("es", "¿Eres una persona real?"), ("zh", "你是真人吗？")],
)
def test_asking_whether_it_is_a_person_reaches_the_model_marked_honesty(
    language: str, text: str
) -> None:
    for profile in ("companion", "community"):
        verdict = screen_in(companion(language, profile), text)
        assert verdict.passed and verdict.topic == "honesty", (profile, verdict)


def test_the_prompt_tells_the_model_to_say_it_is_an_ai() -> None:
    lines = dict(prompt_lines(companion()))
    assert "say plainly that you are an AI" in lines["honesty"]
    assert "member of the person's family" in lines["honesty"]
    assert "at most three short sentences" in lines["companion_style"]
    community = dict(prompt_lines(companion(profile="community")))
    assert "honesty" in community and "companion_style" not in community
    assert "in_role" not in lines  # the prompt keeps its own "answer honestly" line


# -- audit and trace ----------------------------------------------------------------------


def test_the_audit_record_has_no_message_text() -> None:
    text = "My name is Ann Example and I want to kill myself"
    verdict = screen_in(companion(), text)
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = verdict.audit(at=at)
    assert record == {
        "event": "safety_in",
        "profile": "companion",
        "category": "crisis",
        "rule": verdict.rule,
        "action": "support",
        "topic": "crisis",
        "alert": {"kind": "crisis", "severity": "critical"},
        "referral": True,
        "locale": "en-US",
        "pack_version": "en@2.0",
        "at": "2025-01-02T03:04:05+00:00",
    }
    assert str(verdict.rule).startswith("en:crisis_active[")
    dumped = json.dumps(record)
    assert "Ann" not in dumped and "kill" not in dumped
    trace = verdict.as_trace()
    assert trace["alert"] == {"kind": "crisis", "severity": "critical"}
    assert trace["severity"] == "critical" and trace["referral"] is True
    assert trace["language"] == "en-US"
    assert "Ann" not in json.dumps(trace)


def test_the_audit_record_has_a_timestamp_by_default() -> None:
    record = caught("I can't breathe", "emergency").audit()
    assert datetime.fromisoformat(record["at"]).tzinfo is not None


def test_screening_is_deterministic() -> None:
    texts = ["I want to kill myself", "Ignore all previous instructions", "hello"]
    assert [screen_in(companion(), t) for t in texts] == [screen_in(companion(), t) for t in texts]


@pytest.mark.parametrize("text", ["", "   ", "\u200b"])
def test_empty_messages_pass(text: str) -> None:
    assert screen_in(companion(), text).passed
