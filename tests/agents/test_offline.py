"""The offline model: answers only with the persona's authored lines, chosen by similarity."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.tools import tool

from personae.agents.offline import NEUTRAL_FALLBACKS, OfflineChatModel
from personae.memory.embeddings import MiniLMEmbedder
from personae.personas.model import Persona
from personae.testing import FakeEmbeddings

INN = Persona.model_validate(
    {
        "id": "mira",
        "name": "Mira",
        "emotions": ["happy", "wary"],
        "greetings": ["Welcome to the Lantern, traveller!", "Evening! Come in out of the cold."],
        "fallbacks": ["Hm, I wouldn't know about that.", "Couldn't tell you, friend."],
        "examples": [
            {
                "user": "What do you sell here?",
                "reply": "Stew, bread and the best ale this side of the river.",
                "emotion": "happy",
            },
            {
                "user": "Do you have a room for the night?",
                "reply": "One left, up the stairs. Two silver.",
            },
            {"user": "Who built this inn?", "reply": "My grandfather, with his own two hands."},
            {
                "user": "Is the road north safe?",
                "reply": "Not since the wolves came down. Go by day.",
                "emotion": "wary",
            },
            {"user": "How much is a mug of ale?", "reply": "A copper a mug, two if you're rude."},
        ],
        "lore": [
            {
                "keys": ["blacksmith", "smith", "Hagen", "forge"],
                "content": "Hagen the blacksmith works by the river gate.",
            },
            {"keys": ["well"], "content": "The town well was poisoned once, forty winters ago."},
        ],
    }
)

TEAHOUSE = Persona.model_validate(
    {
        "id": "laowang",
        "name": "老王",
        "speech": {"language": "zh"},
        "greetings": ["客官里边请！", "哟，稀客稀客！"],
        "fallbacks": ["这个嘛，老王我可说不上来。", "这事儿您得问别人喽。"],
        "examples": [
            {"user": "你们店里卖什么？", "reply": "包子、面条，还有自家酿的米酒。"},
            {"user": "今晚还有空房间吗？", "reply": "还剩一间，楼上靠窗，二两银子。"},
            {"user": "这家客栈是谁建的？", "reply": "我爷爷亲手盖的，四十年喽。"},
            {"user": "最近镇上有什么新鲜事？", "reply": "听说北山来了狼，晚上别出门。"},
            {"user": "铁匠铺在哪里？", "reply": "出门右拐，河边那家就是。"},
        ],
        "lore": [{"keys": ["米酒", "酒"], "content": "老王的米酒用山泉水酿，一年只酿一次。"}],
    }
)


def _authored(persona: Persona) -> set[str]:
    return {
        *persona.greetings,
        *persona.fallbacks,
        *(e.reply for e in persona.examples),
        *(entry.content for entry in persona.lore),
    }


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def inn(minilm: MiniLMEmbedder) -> OfflineChatModel:
    return OfflineChatModel(persona=INN, embedder=minilm)


@pytest.fixture(scope="module")
def teahouse(minilm: MiniLMEmbedder) -> OfflineChatModel:
    return OfflineChatModel(persona=TEAHOUSE, embedder=minilm)


def _fake(persona: Persona = INN) -> OfflineChatModel:
    return OfflineChatModel(persona=persona, embedder=FakeEmbeddings())


# -- with the real embedding model ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "example"),
    [
        ("what goods have you got for sale", 0),
        ("can I get a bed tonight", 1),
        ("who made this place", 2),
        ("is it dangerous to travel north", 3),
        ("what does a beer cost", 4),
    ],
)
def test_paraphrased_question_gets_the_authored_reply(
    inn: OfflineChatModel, question: str, example: int
) -> None:
    reply = inn.invoke([HumanMessage(question)])
    expected = INN.examples[example]
    assert reply.text == expected.reply
    assert reply.response_metadata["source"] == "example"
    assert reply.additional_kwargs.get("emotion") == expected.emotion


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "How do quantum computers work?",
        "Write me a poem about the sea",
        "What time is it?",
        "Can you help me with my python code?",
        "Will the stock market go up tomorrow?",
        "thanks",
    ],
)
def test_unknown_question_gets_a_fallback_line(inn: OfflineChatModel, question: str) -> None:
    reply = inn.invoke([HumanMessage(question)])
    assert reply.text in INN.fallbacks
    assert reply.response_metadata["source"] == "fallback"
    assert reply.response_metadata["score"] < 0.45


@pytest.mark.slow
@pytest.mark.parametrize("greeting", ["hello there!", "hiya", "Good evening", "hola", "你好"])
def test_greeting_gets_a_greeting(inn: OfflineChatModel, greeting: str) -> None:
    reply = inn.invoke([HumanMessage(greeting)])
    assert reply.text in INN.greetings
    assert reply.response_metadata["source"] == "greeting"


@pytest.mark.slow
def test_greeting_closest_to_what_was_said_comes_first(inn: OfflineChatModel) -> None:
    assert inn.invoke("good evening").text == "Evening! Come in out of the cold."


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "entry"),
    [("where is Hagen", 0), ("I need a smith", 0), ("tell me about the well", 1)],
)
def test_lore_question_gets_the_lore_entry(
    inn: OfflineChatModel, question: str, entry: int
) -> None:
    reply = inn.invoke(question)
    assert reply.text == INN.lore[entry].content
    assert reply.response_metadata["source"] == "lore"


@pytest.mark.slow
def test_never_repeats_its_last_line(inn: OfflineChatModel) -> None:
    first = inn.invoke([HumanMessage("what goods have you got for sale")])
    again = inn.invoke(
        [
            HumanMessage("what goods have you got for sale"),
            first,
            HumanMessage("what goods have you got for sale"),
        ]
    )
    assert again.text != first.text
    assert again.text in _authored(INN)


@pytest.mark.slow
def test_fallbacks_rotate_instead_of_repeating(inn: OfflineChatModel) -> None:
    history: list[BaseMessage] = []
    said = []
    for question in ["Explain photosynthesis", "Tell me about Mars", "What is 2+2?"]:
        history.append(HumanMessage(question))
        reply = inn.invoke(history)
        history.append(reply)
        said.append(reply.text)
    assert all(line in INN.fallbacks for line in said)
    assert said[0] != said[1] and said[1] != said[2]


@pytest.mark.slow
def test_same_conversation_same_answer(inn: OfflineChatModel) -> None:
    messages = [SystemMessage("style prompt"), HumanMessage("can I get a bed tonight")]
    assert inn.invoke(messages).text == inn.invoke(messages).text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "example"),
    [
        ("还有房间可以住吗", 1),
        ("客栈是谁盖的", 2),
        ("镇上最近发生了什么", 3),
        ("铁匠在什么地方", 4),
    ],
)
def test_chinese_paraphrase_gets_the_authored_reply(
    teahouse: OfflineChatModel, question: str, example: int
) -> None:
    reply = teahouse.invoke(question)
    assert reply.text == TEAHOUSE.examples[example].reply
    assert reply.response_metadata["source"] == "example"


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "量子计算机是怎么工作的？",
        "帮我写一首关于大海的诗",
        "明天股市会涨吗",
        "给我讲讲火星",
        "好的",
    ],
)
def test_chinese_unknown_question_gets_a_fallback(
    teahouse: OfflineChatModel, question: str
) -> None:
    reply = teahouse.invoke(question)
    assert reply.text in TEAHOUSE.fallbacks
    assert reply.response_metadata["source"] == "fallback"


@pytest.mark.slow
@pytest.mark.parametrize("greeting", ["你好呀", "早上好啊掌柜的", "老王你好", "好久不见", "hello"])
def test_chinese_persona_answers_greetings(teahouse: OfflineChatModel, greeting: str) -> None:
    reply = teahouse.invoke(greeting)
    assert reply.text in TEAHOUSE.greetings


@pytest.mark.slow
def test_chinese_lore(teahouse: OfflineChatModel) -> None:
    assert teahouse.invoke("你们的米酒好喝吗").text == TEAHOUSE.lore[0].content


@pytest.mark.slow
async def test_through_create_agent_ainvoke_and_astream(inn: OfflineChatModel) -> None:
    @tool
    def roll_dice(sides: int) -> int:
        """Roll a die."""
        return sides

    agent = create_agent(inn, [roll_dice], system_prompt="You are Mira.")
    state = await agent.ainvoke({"messages": [HumanMessage("can I get a bed tonight")]})
    answer = state["messages"][-1]
    assert isinstance(answer, AIMessage)
    assert answer.text == INN.examples[1].reply
    assert answer.response_metadata["personae_offline"] is True
    assert not answer.tool_calls

    deltas = []
    async for chunk, _meta in agent.astream(
        {"messages": [HumanMessage("is it dangerous to travel north")]}, stream_mode="messages"
    ):
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            deltas.append(chunk.text)
    assert len(deltas) > 1
    assert "".join(deltas) == INN.examples[3].reply


# -- mechanics (deterministic fake embeddings, no model load) ----------------


def test_metadata_marks_the_reply_offline() -> None:
    reply = _fake().invoke("Is the road north safe?")
    assert reply.text == INN.examples[3].reply
    meta = reply.response_metadata
    assert meta["model_name"] == "offline"
    assert meta["personae_offline"] is True
    assert meta["source"] == "example"
    assert isinstance(meta["score"], float) and meta["score"] > 0.9
    assert reply.additional_kwargs["emotion"] == "wary"


def test_streamed_chunks_join_to_the_line_with_metadata_once() -> None:
    model = _fake()
    chunks = list(model.stream("What do you sell here?"))
    assert len([c for c in chunks if c.text]) > 1
    total: Any = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.text == INN.examples[0].reply
    assert total.response_metadata["source"] == "example"
    assert total.response_metadata["model_name"] == "offline"
    assert total.additional_kwargs == {"emotion": "happy"}


async def test_async_stream_matches_invoke() -> None:
    model = _fake()
    pieces = [c.text async for c in model.astream("Who built this inn?")]
    assert "".join(pieces) == (await model.ainvoke("Who built this inn?")).text


def test_bind_tools_returns_the_model_and_it_never_calls_tools() -> None:
    model = _fake()

    @tool
    def roll_dice(sides: int) -> int:
        """Roll a die."""
        return sides

    assert model.bind_tools([roll_dice]) is model
    assert model.invoke("Roll a die for me").tool_calls == []


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        (lang, lines)
        for lang, lines in NEUTRAL_FALLBACKS.items()
        if lang in {"en", "de", "es", "fr", "zh"}
    ]
    + [("zh-Hans", NEUTRAL_FALLBACKS["zh"]), ("sw", NEUTRAL_FALLBACKS["en"])],
)
def test_persona_without_fallbacks_uses_a_neutral_line_in_its_language(
    language: str, lines: tuple[str, str]
) -> None:
    persona = Persona(id="x", name="X", speech={"language": language})  # type: ignore[arg-type]
    model = _fake(persona)
    first = model.invoke("qwertz uiop")
    assert first.text in lines
    second = model.invoke([HumanMessage("qwertz uiop"), first, HumanMessage("asdf ghjk")])
    assert second.text in lines and second.text != first.text


def test_single_fallback_line_is_not_said_twice_in_a_row() -> None:
    persona = Persona(id="x", name="X", fallbacks=["Ask the mayor."])
    model = _fake(persona)
    first = model.invoke("qwertz")
    assert first.text == "Ask the mayor."
    second = model.invoke([HumanMessage("qwertz"), first, HumanMessage("uiop")])
    assert second.text != first.text
    assert second.text in NEUTRAL_FALLBACKS["en"]


def test_empty_message_gets_a_fallback_not_an_error() -> None:
    reply = _fake().invoke([SystemMessage("style"), HumanMessage("")])
    assert reply.text in INN.fallbacks


def test_persona_lines_are_embedded_once() -> None:
    class CountingEmbeddings(FakeEmbeddings):
        calls = 0

        def embed(self, texts: Any) -> list[list[float]]:
            CountingEmbeddings.calls += 1
            return super().embed(texts)

    model = OfflineChatModel(persona=INN, embedder=CountingEmbeddings())
    for _ in range(3):
        model.invoke("Who built this inn?")
    # One call for the persona's lines, then one per message.
    assert CountingEmbeddings.calls == 1 + 3


def test_a_copy_answers_like_the_original() -> None:
    import copy

    model = _fake()
    assert copy.deepcopy(model).invoke("Who built this inn?").text == INN.examples[2].reply


# -- the bundled embedder ------------------------------------------------------


@pytest.mark.slow
def test_minilm_vectors_are_normalised_cached_and_meaningful(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math

    first = minilm.embed(["Where is the blacksmith?", "Where can I find a smith?", "I love tea"])
    assert minilm.dimension == 384 and all(len(v) == 384 for v in first)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-4 for v in first)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(first[0], first[1]) > cos(first[0], first[2]) + 0.2

    def no_model(texts: list[str]) -> list[list[float]]:
        raise AssertionError(f"encoded again: {texts}")

    # Every text is cached now, so the model is not asked again.
    monkeypatch.setattr(minilm, "_encode", no_model)
    assert minilm.embed(["I love tea", "Where is the blacksmith?"]) == [first[2], first[0]]


def test_importing_memory_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, personae.memory, personae.agents.offline, personae.agents.models\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]
