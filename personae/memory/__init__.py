"""What a character remembers: embeddings and (later) the memory store.

Importing this package does not import torch or sentence-transformers; the
embedding model loads on first use.
"""

from personae.memory.embeddings import (
    MINILM_DIMENSION,
    MINILM_MODEL_ID,
    Embedder,
    MiniLMEmbedder,
    default_embedder,
)

__all__ = ["MINILM_DIMENSION", "MINILM_MODEL_ID", "Embedder", "MiniLMEmbedder", "default_embedder"]
