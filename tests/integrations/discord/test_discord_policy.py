"""When the bot answers: every rule, its reason, and the inheritance of policies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from personae.integrations.discord.config import (
    DiscordConfig,
    PlaceSettings,
    PolicySettings,
)
from personae.integrations.discord.policy import (
    MessageFacts,
    Policy,
    PolicyState,
    decide,
    resolve_policy,
)

GUILD, CATEGORY, CHANNEL, THREAD = 1, 10, 100, 1000
PLAIN = MessageFacts(author_id=7, guild_id=GUILD, channel_id=CHANNEL, text="hello all")


def state(seed: int = 0) -> PolicyState:
    return PolicyState(seed=seed, clock=lambda: 1000.0)


def check(facts: MessageFacts, policy: Policy | None = None, **kw: object):
    return decide(facts, policy or Policy(), state(), **kw)  # type: ignore[arg-type]


def test_a_plain_message_is_not_answered_and_says_why() -> None:
    decision = check(PLAIN)
    assert (decision.answer, decision.rule) == (False, "quiet")
    assert decision.reason == ("not mentioned, not a reply to the bot, no wake word, and the "
                               "channel is not always-on")


@pytest.mark.parametrize(("facts", "rule", "reason"), [
    (replace(PLAIN, mentions_bot=True), "mention", "the bot was mentioned"),
    (replace(PLAIN, mentions_bot_role=True), "role_mention", "the bot's role was mentioned"),
    (replace(PLAIN, is_reply_to_bot=True), "reply", "the message replies to the bot"),
    (replace(PLAIN, is_dm=True, guild_id=None, channel_id=None), "dm", "it is a direct message"),
])
def test_direct_address_is_answered(facts: MessageFacts, rule: str, reason: str) -> None:
    decision = check(facts)
    assert (decision.answer, decision.rule, decision.reason) == (True, rule, reason)


def test_mentions_can_be_turned_off() -> None:
    policy = Policy(mention=False, sources={"mention": "channel 100 (#quiet)"})
    decision = check(replace(PLAIN, mentions_bot=True, mentions_bot_role=True), policy)
    assert not decision.answer
    assert "mentions are turned off here (mention: false, set by channel 100 (#quiet))" in (
        decision.reason)


def test_replies_can_be_turned_off() -> None:
    decision = check(replace(PLAIN, is_reply_to_bot=True), Policy(reply_to_bot=False))
    assert not decision.answer and "replies are turned off" in decision.reason


def test_direct_messages_can_be_turned_off() -> None:
    facts = replace(PLAIN, is_dm=True, guild_id=None, channel_id=None, mentions_bot=True)
    decision = check(facts, Policy(dm=False))
    assert (decision.answer, decision.rule) == (False, "dm_off")
    assert "direct messages are turned off" in decision.reason


def test_the_bot_never_answers_itself_even_when_everything_else_says_yes() -> None:
    facts = replace(PLAIN, is_self=True, is_bot=True, mentions_bot=True)
    policy = Policy(ignore_bots=False, ignore_webhooks=False, always_on=True)
    decision = check(facts, policy)
    assert (decision.answer, decision.rule) == (False, "self")
    assert decision.reason == "the message is the bot's own"


def test_other_bots_are_ignored_by_default() -> None:
    decision = check(replace(PLAIN, is_bot=True, mentions_bot=True))
    assert (decision.answer, decision.rule) == (False, "bot")
    assert "the author is a bot and bots are ignored" in decision.reason


def test_webhooks_are_ignored_by_default() -> None:
    decision = check(replace(PLAIN, is_bot=True, is_webhook=True, mentions_bot=True))
    assert (decision.answer, decision.rule) == (False, "webhook")
    assert "webhook" in decision.reason


def test_webhooks_and_bots_can_be_let_in() -> None:
    facts = replace(PLAIN, is_bot=True, is_webhook=True, mentions_bot=True)
    assert check(facts, Policy(ignore_webhooks=False)).answer
    assert check(replace(facts, is_webhook=False), Policy(ignore_bots=False)).answer


def test_bot_to_bot_exchanges_stop_at_the_cap() -> None:
    policy = Policy(ignore_bots=False, max_bot_turns=3)
    bot = replace(PLAIN, is_bot=True, mentions_bot=True)
    assert check(replace(bot, bot_turns=2), policy).answer
    decision = check(replace(bot, bot_turns=3), policy)
    assert (decision.answer, decision.rule) == (False, "bot_turns")
    assert "3 bot messages in a row reached the cap of 3" in decision.reason
    # Humans are never capped, however many bot messages came before.
    assert check(replace(PLAIN, mentions_bot=True, bot_turns=10), policy).answer


@pytest.mark.parametrize(("text", "answer"), [
    ("Wren, where are the docs?", True),
    ("hey WREN!", True),
    ("wren", True),
    ("the wrens are singing", False),
    ("awren", False),
])
def test_wake_words_match_whole_words_in_any_case(text: str, answer: bool) -> None:
    decision = check(replace(PLAIN, text=text), Policy(wake_words=("wren",)))
    assert decision.answer is answer
    if answer:
        assert decision.reason == "the message contains the wake word 'wren'"


def test_wake_words_without_the_content_intent_are_explained() -> None:
    facts = replace(PLAIN, text="", content_available=False)
    decision = check(facts, Policy(wake_words=("wren",)))
    assert not decision.answer
    assert "message-content intent" in decision.reason


def test_always_on_answers_everything_but_waits_out_its_cooldown() -> None:
    policy = Policy(always_on=True, cooldown_seconds=30)
    memory = PolicyState(seed=0, clock=lambda: 0.0)
    first = decide(PLAIN, policy, memory, now=100.0)
    assert (first.answer, first.rule) == (True, "always_on")
    memory.answered(PLAIN.place_id, now=100.0)
    soon = decide(PLAIN, policy, memory, now=110.0)
    assert (soon.answer, soon.rule) == (False, "cooldown")
    assert "20 s left" in soon.reason
    assert decide(PLAIN, policy, memory, now=131.0).answer
    # The cooldown belongs to the place: another channel is free.
    assert decide(replace(PLAIN, channel_id=200), policy, memory, now=110.0).answer


def test_direct_address_is_not_held_back_by_the_place_cooldown() -> None:
    policy = Policy(always_on=True, cooldown_seconds=30)
    memory = state()
    memory.answered(PLAIN.place_id, now=100.0)
    assert decide(replace(PLAIN, mentions_bot=True), policy, memory, now=101.0).answer


def test_the_cooldown_of_a_thread_is_its_own() -> None:
    policy = Policy(always_on=True, cooldown_seconds=30)
    memory = state()
    in_thread = replace(PLAIN, thread_id=THREAD)
    memory.answered(in_thread.place_id, now=100.0)
    assert not decide(in_thread, policy, memory, now=101.0).answer
    assert decide(PLAIN, policy, memory, now=101.0).answer


def test_talkativeness_is_a_probability_with_seeded_dice() -> None:
    def rate(chance: float, seed: int) -> float:
        memory = PolicyState(seed=seed)
        policy = Policy(talkativeness=chance)
        return sum(decide(PLAIN, policy, memory).answer for _ in range(2000)) / 2000

    assert rate(0.0, 1) == 0.0
    assert rate(1.0, 1) == 1.0
    assert 0.2 < rate(0.25, 1) < 0.3
    assert rate(0.25, 7) == rate(0.25, 7)  # same seed, same run


def test_talkative_reasons_give_the_roll() -> None:
    memory = PolicyState(seed=3)
    decisions = [decide(PLAIN, Policy(talkativeness=0.5), memory) for _ in range(20)]
    yes = next(d for d in decisions if d.answer)
    no = next(d for d in decisions if not d.answer)
    assert yes.rule == "talkative" and "under the talkativeness of 0.5" in yes.reason
    assert no.rule == "quiet" and "not under the talkativeness of 0.5" in no.reason


def test_decide_records_nothing() -> None:
    memory = state()
    policy = Policy(always_on=True, cooldown_seconds=30)
    for _ in range(3):
        assert decide(PLAIN, policy, memory).answer
    assert memory.since_answer(PLAIN.place_id) is None


# --- inheritance ----------------------------------------------------------------------


def config() -> DiscordConfig:
    return DiscordConfig(
        personas={"guide": Path("guide.yaml")},
        policy=PolicySettings(wake_words=["wren"], cooldown_seconds=5),
        guilds={GUILD: PlaceSettings(name="Lumen", policy=PolicySettings(talkativeness=0.1))},
        categories={CATEGORY: PlaceSettings(policy=PolicySettings(wake_words=["brenna"]))},
        channels={CHANNEL: PlaceSettings(name="#tavern",
                                         policy=PolicySettings(always_on=True))},
        threads={THREAD: PlaceSettings(policy=PolicySettings(always_on=False, mention=False))},
        direct_messages=PlaceSettings(policy=PolicySettings(dm=False)),
    )


def test_policies_are_inherited_downward_and_overridden_field_by_field() -> None:
    cfg = config()
    guild = resolve_policy(cfg, GUILD, None, 5, None)
    assert guild.wake_words == ("wren",) and guild.talkativeness == 0.1
    assert not guild.always_on and guild.cooldown_seconds == 5
    channel = resolve_policy(cfg, GUILD, CATEGORY, CHANNEL, None)
    assert channel.wake_words == ("brenna",)
    assert channel.always_on and channel.talkativeness == 0.1 and channel.mention
    thread = resolve_policy(cfg, GUILD, CATEGORY, CHANNEL, THREAD)
    assert not thread.always_on and not thread.mention and thread.wake_words == ("brenna",)


def test_policy_sources_say_where_each_value_was_set() -> None:
    policy = resolve_policy(config(), GUILD, CATEGORY, CHANNEL, None)
    assert policy.source("always_on") == "channel 100 (#tavern)"
    assert policy.source("talkativeness") == "guild 1 (Lumen)"
    assert policy.source("wake_words") == "category 10"
    assert policy.source("cooldown_seconds") == "the top-level policy"
    assert policy.source("mention") == "default"
    decision = decide(PLAIN, policy, state())
    assert decision.reason == "the channel is always-on (set by channel 100 (#tavern))"


def test_direct_messages_use_their_own_settings_not_the_places() -> None:
    policy = resolve_policy(config(), None, None, CHANNEL, None, is_dm=True)
    assert policy.dm is False and policy.always_on is False
    assert policy.wake_words == ("wren",)


def test_builtin_defaults() -> None:
    policy = resolve_policy(DiscordConfig(personas={"a": Path("a.yaml")}), 1, 2, 3, 4)
    assert policy == Policy()
    assert (policy.mention, policy.reply_to_bot, policy.dm, policy.ignore_bots,
            policy.ignore_webhooks, policy.max_bot_turns) == (True, True, True, True, True, 3)
    assert (policy.always_on, policy.talkativeness, policy.wake_words) == (False, 0.0, ())
