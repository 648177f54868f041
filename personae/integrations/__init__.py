"""Where a character lives: game, Discord and HTTP integrations, each behind an extra.

Nothing in personae imports this package; each integration depends only on
`personae.agents`.
"""

__all__: list[str] = []
