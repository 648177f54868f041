"""Who a character is: the persona model and its files.

Example:
    ```python
    from personae.personas import load_persona

    brenna = load_persona("examples/personas/innkeeper.yaml")
    print(brenna.display_name, len(brenna.lore))
    ```

"""

from personae.personas.loading import load_persona, validate_files
from personae.personas.model import (
    SCHEMA_VERSION,
    CoStar,
    Example,
    HostAction,
    LoreEntry,
    MemoryPolicy,
    ModelSettings,
    Persona,
    SafetyProfile,
    SpeechRules,
)

__all__ = [
    "SCHEMA_VERSION",
    "CoStar",
    "Example",
    "HostAction",
    "LoreEntry",
    "MemoryPolicy",
    "ModelSettings",
    "Persona",
    "SafetyProfile",
    "SpeechRules",
    "load_persona",
    "validate_files",
]
