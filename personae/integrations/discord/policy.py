"""When the bot answers a message, and why: one declarative policy per place.

A `Policy` is resolved for the place a message was written in, from the
built-in defaults, the config's top-level `policy`, then the guild, category,
channel and thread (or `direct_messages`), each overriding only what it sets.
`decide` applies it to the facts of one message and returns a `Decision`
with a human reason, which `personae discord why` prints as is.

The order of the rules:

1. never the bot's own messages (or its webhooks'); webhooks and other bots
   as configured, and never more than `max_bot_turns` bot messages in a row;
2. direct messages, when `dm` is on;
3. direct address: a mention of the bot or its managed role, a reply to the
   bot, a wake word;
4. ambient answers, after `cooldown_seconds` since the last answer in the
   place: every message where `always_on`, else with the `talkativeness`
   probability.

Example:
    ```python
    policy = resolve_policy(config, guild_id=1, category_id=None, channel_id=2, thread_id=None)
    decision = decide(MessageFacts(author_id=7, channel_id=2, guild_id=1, mentions_bot=True),
                      policy, PolicyState(seed=1))
    decision.answer, decision.reason  # (True, "the bot was mentioned")
    ```
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Literal

from personae.integrations.discord.config import DiscordConfig, PlaceSettings, place_label

__all__ = ["Decision", "MessageFacts", "Policy", "PolicyState", "Rule", "decide", "resolve_policy"]

Rule = Literal[
    "self", "webhook", "bot", "bot_turns", "dm", "dm_off", "mention", "role_mention",
    "reply", "wake_word", "always_on", "talkative", "cooldown", "quiet",
]
"""Which rule made a decision, for logs and tests."""


@dataclass(frozen=True, kw_only=True)
class MessageFacts:
    """What the policy needs to know about one message; built by the bot from discord.py.

    Attributes:
        author_id: Who wrote it.
        channel_id: The text channel; for a message in a thread, the thread's
            parent channel. In direct messages, the DM channel (or None).
        guild_id: The guild, None in direct messages.
        category_id: The category of the channel, if any.
        thread_id: The thread the message was written in, if any.
        is_bot: The author is a bot account (webhooks count as bots too).
        is_webhook: The message was sent through a webhook.
        is_self: Written by this bot, or through one of its own webhooks.
        mentions_bot: The bot user is mentioned.
        mentions_bot_role: The bot's managed role is mentioned.
        is_reply_to_bot: The message replies to one of the bot's messages.
        is_dm: A direct message.
        text: The text; empty when the bot lacks the message-content intent.
        content_available: False when the bot cannot read message text at all
            (no message-content intent), so wake words cannot match.
        bot_turns: Messages in a row written by bots just before this one.
    """

    author_id: int
    channel_id: int | None
    guild_id: int | None = None
    category_id: int | None = None
    thread_id: int | None = None
    is_bot: bool = False
    is_webhook: bool = False
    is_self: bool = False
    mentions_bot: bool = False
    mentions_bot_role: bool = False
    is_reply_to_bot: bool = False
    is_dm: bool = False
    text: str = ""
    content_available: bool = True
    bot_turns: int = 0

    @property
    def place_id(self) -> int | None:
        """Where the conversation happens: the thread, else the channel (cooldown key)."""
        return self.thread_id if self.thread_id is not None else self.channel_id


@dataclass(frozen=True)
class Policy:
    """A resolved answer policy: every value set. See `PolicySettings` for the meanings.

    Attributes:
        sources: For each field, where its value was set: `the top-level
            policy`, `direct_messages`, or a place such as `channel 42 (#help)`;
            fields set nowhere are missing (`source()` says `default`).
    """

    mention: bool = True
    reply_to_bot: bool = True
    dm: bool = True
    wake_words: tuple[str, ...] = ()
    always_on: bool = False
    talkativeness: float = 0.0
    cooldown_seconds: float = 0.0
    ignore_bots: bool = True
    ignore_webhooks: bool = True
    max_bot_turns: int = 3
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)

    def source(self, name: str) -> str:
        """Where the value of field `name` was set (`default` when nowhere)."""
        return self.sources.get(name, "default")


_POLICY_FIELDS = tuple(f.name for f in fields(Policy) if f.name != "sources")


def resolve_policy(
    config: DiscordConfig,
    guild_id: int | None,
    category_id: int | None,
    channel_id: int | None,
    thread_id: int | None,
    *,
    is_dm: bool = False,
) -> Policy:
    """Return the policy of a place: defaults, then top level, then each place downward.

    Args:
        config: The bot's config.
        guild_id: The guild, None in direct messages.
        category_id: The channel's category, if any.
        channel_id: The channel (for a thread: its parent).
        thread_id: The thread, if any.
        is_dm: A direct message: `direct_messages` applies instead of the places.

    Returns:
        The resolved policy, with where each value came from.
    """
    values: dict[str, object] = {}
    sources: dict[str, str] = {}

    def apply(settings_owner: str, place: PlaceSettings | None, top: bool = False) -> None:
        settings = config.policy if top else (place.policy if place is not None else None)
        if settings is None:
            return
        for name in _POLICY_FIELDS:
            value = getattr(settings, name)
            if value is not None:
                values[name] = tuple(w.strip() for w in value) if name == "wake_words" else value
                sources[name] = settings_owner

    apply("the top-level policy", None, top=True)
    if is_dm:
        apply("direct_messages", config.direct_messages)
    else:
        for kind, key, place_id in (
            ("guild", "guilds", guild_id), ("category", "categories", category_id),
            ("channel", "channels", channel_id), ("thread", "threads", thread_id),
        ):
            place = getattr(config, key).get(place_id) if place_id is not None else None
            if place is not None:
                apply(place_label(kind, place_id, place), place)
    return Policy(**values, sources=MappingProxyType(sources))  # type: ignore[arg-type]


class PolicyState:
    """What the policy remembers between messages: last answers per place, and the dice.

    Args:
        seed: Seed of the talkativeness dice; None: random.
        clock: Monotonic seconds; injected by tests.
    """

    def __init__(
        self, *, seed: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self._answered: dict[int | None, float] = {}

    def answered(self, place_id: int | None, *, now: float | None = None) -> None:
        """Note that the bot answered in a place (starts its cooldown)."""
        self._answered[place_id] = self.clock() if now is None else now

    def since_answer(self, place_id: int | None, *, now: float | None = None) -> float | None:
        """Seconds since the bot last answered in a place, None if it never did."""
        last = self._answered.get(place_id)
        if last is None:
            return None
        return (self.clock() if now is None else now) - last


@dataclass(frozen=True)
class Decision:
    """Whether to answer a message, and why.

    Attributes:
        answer: True to answer.
        reason: A sentence a server admin understands, e.g. "the bot was mentioned".
        rule: The rule that decided.
    """

    answer: bool
    reason: str
    rule: Rule


def decide(
    message: MessageFacts, policy: Policy, state: PolicyState, *, now: float | None = None
) -> Decision:
    """Decide whether the bot answers `message`, with the reason.

    Records nothing: call `state.answered(message.place_id)` once the bot has
    answered. Only the talkativeness dice change `state`.

    Args:
        message: Facts of the message.
        policy: The policy of the place (`resolve_policy`).
        state: Last answers per place and the dice.
        now: Monotonic time; default `state.clock()`.

    Returns:
        The decision.
    """
    where = "in direct messages" if message.is_dm else "here"
    if message.is_self:
        return Decision(False, "the message is the bot's own", "self")
    if message.is_webhook and policy.ignore_webhooks:
        return Decision(False, f"the message came through a webhook and webhooks are ignored "
                        f"(ignore_webhooks, set by {policy.source('ignore_webhooks')})", "webhook")
    if message.is_bot and policy.ignore_bots and not message.is_webhook:
        return Decision(False, f"the author is a bot and bots are ignored "
                        f"(ignore_bots, set by {policy.source('ignore_bots')})", "bot")
    if message.is_bot and message.bot_turns >= policy.max_bot_turns:
        return Decision(False, f"{message.bot_turns} bot messages in a row reached the cap of "
                        f"{policy.max_bot_turns} (max_bot_turns, set by "
                        f"{policy.source('max_bot_turns')})", "bot_turns")
    if message.is_dm:
        if policy.dm:
            return Decision(True, "it is a direct message", "dm")
        return Decision(False, f"direct messages are turned off (dm: false, set by "
                        f"{policy.source('dm')})", "dm_off")
    missed: list[str] = []
    if message.mentions_bot or message.mentions_bot_role:
        if policy.mention:
            if message.mentions_bot:
                return Decision(True, "the bot was mentioned", "mention")
            return Decision(True, "the bot's role was mentioned", "role_mention")
        missed.append(f"mentioned, but mentions are turned off {where} "
                      f"(mention: false, set by {policy.source('mention')})")
    if message.is_reply_to_bot:
        if policy.reply_to_bot:
            return Decision(True, "the message replies to the bot", "reply")
        missed.append(f"a reply to the bot, but replies are turned off {where} "
                      f"(reply_to_bot: false, set by {policy.source('reply_to_bot')})")
    word = _wake_word(message.text, policy.wake_words)
    if word is not None:
        return Decision(True, f"the message contains the wake word {word!r}", "wake_word")
    if policy.wake_words and not message.content_available:
        missed.append("wake words cannot match: the bot cannot read message text without the "
                      "message-content intent")
    if policy.always_on or policy.talkativeness > 0:
        return _ambient(message, policy, state, now)
    if not missed:
        missed.append("not mentioned, not a reply to the bot, no wake word, and the channel is "
                      "not always-on")
    return Decision(False, "; ".join(missed), "quiet")


def _ambient(
    message: MessageFacts, policy: Policy, state: PolicyState, now: float | None
) -> Decision:
    """Decide an unprompted answer: always-on or talkative, after the place's cooldown."""
    since = state.since_answer(message.place_id, now=now)
    if since is not None and since < policy.cooldown_seconds:
        left = policy.cooldown_seconds - since
        return Decision(False, f"the bot answered here {since:.0f} s ago; it waits "
                        f"{policy.cooldown_seconds:g} s between unprompted answers "
                        f"(cooldown_seconds, set by {policy.source('cooldown_seconds')}; "
                        f"{left:.0f} s left)", "cooldown")
    if policy.always_on:
        return Decision(True, f"the channel is always-on (set by {policy.source('always_on')})",
                        "always_on")
    roll = state.rng.random()
    chance = policy.talkativeness
    if roll < chance:
        return Decision(True, f"not called, but chimed in: rolled {roll:.2f} under the "
                        f"talkativeness of {chance:g}", "talkative")
    return Decision(False, f"not mentioned, not a reply to the bot, no wake word, and the "
                    f"channel is not always-on; rolled {roll:.2f}, not under the talkativeness "
                    f"of {chance:g}", "quiet")


def _wake_word(text: str, words: tuple[str, ...]) -> str | None:
    """Return the first wake word found in `text` as a whole word (any case), or None."""
    for word in words:
        # \b fails next to non-word characters (e.g. a word ending in "!"), so
        # look for "not a word character" on each side instead.
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE):
            return word
    return None
