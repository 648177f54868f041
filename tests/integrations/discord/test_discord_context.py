"""The context of a turn: reply chain, then thread, then channel, newest first, in budget."""

from __future__ import annotations

from personae.integrations.discord.context import (
    ContextMessage,
    build_context,
    reply_chain,
)
from personae.tokens import HeuristicCounter, default_counter

COUNTER = HeuristicCounter()


def msg(i: int, text: str | None = None, *, author: str = "ann", reply_to: int | None = None,
        is_bot: bool = False) -> ContextMessage:
    return ContextMessage(author, f"message number {i}" if text is None else text, is_bot, i,
                          reply_to)


CURRENT = msg(100, "so what do you think?", reply_to=50)


def test_sections_are_shown_widest_first_each_oldest_first() -> None:
    context = build_context(
        CURRENT,
        reply_chain=[msg(50, "the tavern opens at dusk", author="bo"), msg(40, "when?")],
        thread=[msg(60), msg(61)],
        channel=[msg(1), msg(2)],
        budget=500, counter=COUNTER,
    )
    assert context.text == "\n".join([
        "Earlier in the channel:", "ann: message number 1", "ann: message number 2",
        "Earlier in this thread:", "ann: message number 60", "ann: message number 61",
        "The message is a reply to:", "ann: when?", "bo: the tavern opens at dusk",
    ])
    assert [m.id for m in context.messages] == [1, 2, 60, 61, 40, 50]
    assert context.dropped == 0 and not context.degraded
    assert context.tokens == COUNTER.count(context.text)


def test_the_budget_keeps_the_reply_chain_first_then_the_newest_history() -> None:
    channel = [msg(i) for i in range(1, 41)]
    context = build_context(CURRENT, reply_chain=[msg(50, "the question")], channel=channel,
                            budget=60, counter=COUNTER)
    assert context.tokens <= 60
    ids = [m.id for m in context.messages]
    assert ids[-1] == 50
    kept_channel = ids[:-1]
    assert kept_channel == list(range(41 - len(kept_channel), 41))  # the newest, contiguous
    assert 0 < len(kept_channel) < 40
    assert context.dropped == 40 - len(kept_channel)


def test_budget_is_respected_with_the_default_counter() -> None:
    counter = default_counter()
    channel = [msg(i, "The Lantern Inn stands by the river. " * 3) for i in range(200)]
    for budget in (0, 5, 40, 300):
        context = build_context(CURRENT, channel=channel, budget=budget, counter=counter)
        assert counter.count(context.text) <= budget
    assert build_context(CURRENT, channel=channel, budget=0, counter=counter).text == ""


def test_a_long_message_replied_to_is_shortened_not_dropped() -> None:
    long = msg(50, "word " * 400)
    context = build_context(CURRENT, reply_chain=[long], budget=60, counter=COUNTER)
    assert context.tokens <= 60
    assert context.messages[0].id == 50
    assert context.messages[0].text.endswith(" …")


def test_the_message_itself_and_duplicates_are_left_out() -> None:
    parent = msg(50, "parent")
    context = build_context(CURRENT, reply_chain=[parent], thread=[parent, CURRENT, msg(61)],
                            channel=[msg(61), msg(62)], budget=500, counter=COUNTER)
    assert [m.id for m in context.messages] == [62, 61, 50]
    assert "so what do you think?" not in context.text


def test_bots_are_marked_and_whitespace_is_folded() -> None:
    context = build_context(CURRENT, channel=[msg(1, "Aye,\n\ntwo   silver.", author="Brenna",
                                                  is_bot=True)], budget=100, counter=COUNTER)
    assert context.text.endswith("Brenna (bot): Aye, two silver.")


def test_without_the_content_intent_the_context_says_what_is_missing() -> None:
    channel = [msg(1, ""), msg(2, ""), msg(3, "hey @bot, you there?")]
    context = build_context(CURRENT, channel=channel, budget=200, counter=COUNTER,
                            content_available=False)
    assert context.degraded
    assert context.text.startswith("(Some earlier messages are not shown")
    assert "message-content intent" in context.text
    assert [m.id for m in context.messages] == [3]


def test_empty_messages_with_the_intent_are_just_skipped() -> None:
    context = build_context(CURRENT, channel=[msg(1, ""), msg(2, "hi")], budget=200,
                            counter=COUNTER)
    assert not context.degraded and "not shown" not in context.text
    assert [m.id for m in context.messages] == [2]


def test_nothing_to_show() -> None:
    context = build_context(CURRENT, counter=COUNTER)
    assert (context.text, context.messages, context.tokens, context.dropped) == ("", (), 0, 0)


def test_reply_chain_follows_links_nearest_first_and_stops() -> None:
    known = {m.id: m for m in [msg(50, reply_to=40), msg(40, reply_to=30), msg(30),
                               msg(7, reply_to=8), msg(8, reply_to=7)]}
    assert [m.id for m in reply_chain(CURRENT, known)] == [50, 40, 30]
    assert [m.id for m in reply_chain(CURRENT, known, limit=2)] == [50, 40]
    assert [m.id for m in reply_chain(msg(9, reply_to=7), known)] == [7, 8]  # loop cut
    assert reply_chain(msg(9, reply_to=12345), known) == []  # not fetched
    assert reply_chain(msg(9), known) == []
