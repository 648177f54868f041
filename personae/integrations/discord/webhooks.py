"""Personas with their own names and avatars: one webhook per channel, owned by the bot.

Discord shows a webhook message under the name and avatar given with it,
so one webhook lets every persona of the bot speak in a channel as itself.
`ChannelWebhooks` keeps one webhook per text channel (threads use their
parent's), remembered in `DiscordState` across restarts:

- it is found again (a webhook of this bot's application in the channel) or
  created on first use, which needs the Manage Webhooks permission;
- deleted by someone (Discord answers 404), it is made again, once per send;
- in DMs, with webhooks turned off, or without Manage Webhooks, there is
  none, and the bot speaks as itself.

A persona's `avatar` is a local file, and Discord takes per-message avatars
only as URLs, so the file is uploaded as the webhook's own avatar; a send as
another persona with a different avatar re-uploads first (sends through one
webhook take turns for that). A persona without an avatar is shown with the
bot's own avatar.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import discord

from personae.integrations.discord.output import sanitise_name
from personae.integrations.discord.state import DiscordState, WebhookRef

__all__ = ["ChannelWebhooks", "Speaker"]

log = logging.getLogger(__name__)

_WEBHOOK_NAME = "personae"
_UNKNOWN_WEBHOOK = 10015
"""Discord's error code for a webhook that does not exist (any more)."""


@dataclass(frozen=True)
class Speaker:
    """Who a webhook message is shown as.

    Attributes:
        key: Persona id; which avatar the webhook holds is tracked by it.
        name: Display name (cleaned for Discord's username rules before use).
        avatar: Local image file, or None for the bot's own avatar.
    """

    key: str
    name: str
    avatar: Path | None = None


class ChannelWebhooks:
    """The bot's webhook in each channel, found, created and rebuilt on demand.

    Args:
        client: The bot; its user owns the webhooks.
        state: Where webhook ids and tokens are kept across restarts.
        enabled: False to always speak as the bot itself.
    """

    def __init__(self, client: discord.Client, state: DiscordState, *, enabled: bool = True
                 ) -> None:
        self.client = client
        self.state = state
        self.enabled = enabled
        self._hooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._avatar_of: dict[int, str | None] = {}
        self._avatars: dict[str, bytes | None] = {}
        self.own_ids: set[int] = set()
        """Ids of the webhooks this bot speaks through (their messages are its own)."""

    # -- which webhook ----------------------------------------------------------------

    @staticmethod
    def host(channel: object) -> discord.TextChannel | None:
        """Return the channel whose webhook serves `channel` (a thread's parent), or None."""
        if isinstance(channel, discord.Thread):
            channel = channel.parent
        if isinstance(channel, discord.TextChannel | discord.VoiceChannel | discord.StageChannel
                      | discord.ForumChannel):
            return channel  # type: ignore[return-value]
        return None

    def usable(self, channel: object) -> bool:
        """Whether the bot may speak through a webhook in `channel` (not a DM, has permission)."""
        host = self.host(channel)
        if not self.enabled or host is None:
            return False
        me = host.guild.me
        return me is not None and host.permissions_for(me).manage_webhooks

    async def is_own(self, webhook_id: int | None, channel: object) -> bool:
        """Whether a message's webhook is this bot's (also one remembered from an earlier run)."""
        if webhook_id is None:
            return False
        if webhook_id in self.own_ids:
            return True
        host = self.host(channel)
        ref = await self.state.webhook(host.id) if host is not None else None
        if ref is not None and ref.id == webhook_id:
            self.own_ids.add(ref.id)
            return True
        return False

    async def remember(self, channel_id: int) -> None:
        """Recognise the webhook kept for a channel in the state (for `why` replays)."""
        ref = await self.state.webhook(channel_id)
        if ref is not None:
            self.own_ids.add(ref.id)

    async def get(self, channel: object, speaker: Speaker | None = None) -> discord.Webhook | None:
        """Return the bot's webhook for `channel`, finding or creating it; None if not possible.

        Args:
            channel: A text channel or a thread (which uses its parent's webhook).
            speaker: Whose avatar to give a newly created webhook.
        """
        if not self.usable(channel):
            return None
        host = self.host(channel)
        assert host is not None
        cached = self._hooks.get(host.id)
        if cached is not None:
            return cached
        async with self._lock(host.id):
            cached = self._hooks.get(host.id)
            if cached is not None:
                return cached
            try:
                hook = await self._load(host, speaker)
            except discord.HTTPException as exc:
                # Forbidden, or the channel's limit of webhooks is reached.
                log.warning("cannot get a webhook in channel %s (%s %s); speaking as the bot",
                            host.id, exc.status, exc.code)
                return None
            if hook is not None:
                self._hooks[host.id] = hook
                self.own_ids.add(hook.id)
            return hook

    async def _load(self, host: discord.TextChannel, speaker: Speaker | None
                    ) -> discord.Webhook | None:
        ref = await self.state.webhook(host.id)
        if ref is not None:
            self.own_ids.add(ref.id)
            return discord.Webhook.partial(ref.id, ref.token, client=self.client)
        me = self.client.user
        for hook in await host.webhooks():
            # Adopt a webhook this bot made before its state was lost, not pile up new ones.
            if me is not None and hook.user is not None and hook.user.id == me.id and hook.token:
                await self.state.set_webhook(host.id, WebhookRef(hook.id, hook.token))
                return hook
        return await self._create(host, speaker)

    async def _create(self, host: discord.TextChannel, speaker: Speaker | None
                      ) -> discord.Webhook:
        avatar = await self._avatar(speaker) if speaker is not None else None
        hook = await host.create_webhook(name=_WEBHOOK_NAME, avatar=avatar,
                                         reason="personae speaks here as its personas")
        assert hook.token is not None
        self._avatar_of[hook.id] = speaker.key if speaker is not None and avatar else None
        await self.state.set_webhook(host.id, WebhookRef(hook.id, hook.token))
        return hook

    async def forget(self, channel: object) -> None:
        """Drop the cached webhook of `channel` (it was deleted), here and in the state."""
        host = self.host(channel)
        if host is None:
            return
        hook = self._hooks.pop(host.id, None)
        if hook is not None:
            self._avatar_of.pop(hook.id, None)
        await self.state.forget_webhook(host.id)

    # -- sending ----------------------------------------------------------------------

    async def send(
        self,
        channel: object,
        content: str,
        *,
        speaker: Speaker,
        allowed_mentions: discord.AllowedMentions,
    ) -> discord.WebhookMessage | None:
        """Post `content` in `channel` as `speaker`; None when only the bot identity can post.

        A webhook deleted meanwhile (404) is made again and the send tried once
        more; if that fails too, the bot identity is left to post.

        Any other refusal also leaves the bot identity to post.
        """
        for attempt in range(2):
            hook = await self.get(channel, speaker)
            if hook is None:
                return None
            try:
                return await self._send(hook, channel, content, speaker, allowed_mentions)
            except discord.NotFound as exc:
                if exc.code != _UNKNOWN_WEBHOOK:
                    # Not the webhook: e.g. the thread was deleted meanwhile.
                    log.info("webhook send in channel %s found nothing (%s)",
                             getattr(channel, "id", None), exc.code)
                    return None
                log.info("webhook %s is gone%s", hook.id,
                         "" if attempt else "; making a new one")
                await self.forget(channel)
            except discord.Forbidden:
                log.warning("webhook refused in channel %s; speaking as the bot",
                            getattr(channel, "id", None))
                await self.forget(channel)
                return None
            except discord.HTTPException as exc:
                log.warning("webhook send failed in channel %s (%s %s); speaking as the bot",
                            getattr(channel, "id", None), exc.status, exc.code)
                return None
        return None

    async def _send(self, hook: discord.Webhook, channel: object, content: str,
                    speaker: Speaker, allowed_mentions: discord.AllowedMentions
                    ) -> discord.WebhookMessage:
        thread = channel if isinstance(channel, discord.Thread) else discord.utils.MISSING
        async with self._lock(hook.id):
            avatar_url = await self._dress(hook, speaker)
            return await hook.send(
                content,
                username=sanitise_name(speaker.name),
                avatar_url=avatar_url if avatar_url is not None else discord.utils.MISSING,
                allowed_mentions=allowed_mentions,
                thread=thread,
                wait=True,
            )

    async def _dress(self, hook: discord.Webhook, speaker: Speaker) -> str | None:
        """Give the webhook the speaker's avatar; return an avatar URL to send with, if any."""
        avatar = await self._avatar(speaker)
        if avatar is None:
            me = self.client.user
            return me.display_avatar.url if me is not None else None
        if self._avatar_of.get(hook.id) != speaker.key:
            try:
                await hook.edit(avatar=avatar, reason=f"speaking as {sanitise_name(speaker.name)}")
            except discord.NotFound:
                raise
            except discord.HTTPException as exc:
                # A picture Discord refuses (too large, unknown format): use the bot's.
                log.warning("Discord refused the avatar of persona %r (%s); using the bot's",
                            speaker.key, exc.status)
                self._avatars[speaker.key] = None
                me = self.client.user
                return me.display_avatar.url if me is not None else None
            self._avatar_of[hook.id] = speaker.key
        return None

    async def _avatar(self, speaker: Speaker) -> bytes | None:
        if speaker.key not in self._avatars:
            data: bytes | None = None
            if speaker.avatar is not None:
                try:
                    data = await asyncio.to_thread(speaker.avatar.read_bytes)
                except OSError as exc:
                    log.warning("cannot read the avatar of persona %r: %s", speaker.key,
                                exc.strerror)
            self._avatars[speaker.key] = data
        return self._avatars[speaker.key]

    def _lock(self, key: int) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())
