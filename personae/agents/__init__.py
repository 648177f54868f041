"""How a character thinks and acts: models, tools, safety and the `Agent`."""

__all__: list[str] = []
