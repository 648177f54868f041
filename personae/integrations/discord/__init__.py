"""Discord: a persona as a discord.py bot, behind the `discord` extra.

The decisions the bot makes (configuration, when to answer, which persona,
context, output, limits, state) live in modules that do not import
discord.py, so they can be tested and explained (`personae discord why`)
without a gateway. Install the bot itself with `pip install "personae[discord]"`.
"""

__all__: list[str] = []
