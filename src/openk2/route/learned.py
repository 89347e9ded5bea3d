"""The learned router (RouteLLM's idea, small): a logistic regression over prompt features
predicts the chance that the weak deployment answers as well as the strong one.

Trained on `openk2 eval` results (`openk2 route-train`): each eval task is one example, its
label whether the weak endpoint did at least as well as the strong one on it (the "win"
of RouteLLM's preference data, from measured pass/fail instead of human votes). Features
are what a proxy can compute in microseconds: prompt length, message count, tools and
images, then either hashed word unigrams and bigrams (`hashed`, the default: crc32, so a
model file means the same thing in every process, numpy only) or the prompt's sentence
embedding (`embedding`: all-MiniLM-L6-v2, see `embedding.py`, the optional `embed` extra).
The model is a JSON file of weights that names its feature kind.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openk2.route.config import Deployment
from openk2.route.embedding import EMBED_DIM  # a constant: the module loads no model

HASH_DIM = 1024
FEATURE_KINDS = ("hashed", "embedding")
DEFAULT_THRESHOLD = 0.5
_WORD = re.compile(r"[a-z0-9_]+")
_DENSE = 5


def _text(body: dict[str, Any]) -> str:
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return " ".join(parts).lower()


def _dense(body: dict[str, Any]) -> np.ndarray:
    """Shape of the request: prompt length, tools, images, turns."""
    text, tools = _text(body), body.get("tools") or []
    return np.asarray((math.log1p(len(text)) / 10, float(bool(tools)), len(tools) / 10,
                       float("image_url" in json.dumps(body.get("messages") or [])),
                       len(body.get("messages") or []) / 10))


def featurize(body: dict[str, Any], dim: int = HASH_DIM) -> np.ndarray:
    """The hashed feature vector of one chat request (dense features, then n-grams)."""
    text = _text(body)
    tools = body.get("tools") or []
    words = _WORD.findall(text)
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    grams += [f"tool:{t.get('function', {}).get('name', '')}" for t in tools
              if isinstance(t, dict)]
    x = np.zeros(_DENSE + dim)
    x[:_DENSE] = _dense(body)
    for g in grams:
        x[_DENSE + zlib.crc32(g.encode()) % dim] += 1.0
    if grams:
        x[_DENSE:] /= math.sqrt(len(grams))
    return x


def featurize_many(bodies: list[dict[str, Any]], kind: str = "hashed",
                   dim: int = HASH_DIM) -> np.ndarray:
    """Feature rows of several requests (embeddings are computed in one batch)."""
    if kind == "hashed":
        return np.stack([featurize(body, dim) for body in bodies])
    if kind != "embedding":
        raise ValueError(f"features must be one of {FEATURE_KINDS}, got {kind!r}")
    from openk2.route.embedding import shared_embedder  # torch only for this kind

    vectors = shared_embedder().encode([_text(body) for body in bodies])
    return np.hstack([np.stack([_dense(body) for body in bodies]), vectors])


def _dim_for(kind: str) -> int:
    return EMBED_DIM if kind == "embedding" else HASH_DIM


@dataclass
class LearnedRouter:
    """Weights of the win-score classifier and which endpoints it arbitrates between."""

    weak: str
    strong: str
    weights: np.ndarray
    bias: float
    dim: int = HASH_DIM
    trained_on: int = 0
    features: str = "hashed"

    @property
    def heavy(self) -> bool:
        """Is scoring a request real CPU work (worth running off the event loop)?"""
        return self.features == "embedding"

    def win_score(self, body: dict[str, Any]) -> float:
        """P(the weak endpoint does as well as the strong one on this request)."""
        z = float(featurize_many([body], self.features, self.dim)[0] @ self.weights)
        z += self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def order(self, ds: list[Deployment], body: dict[str, Any], threshold: float,
              score: float | None = None) -> list[Deployment]:
        """Weak first when its win score (given, or computed here) clears the threshold,
        else strong first."""
        score = self.win_score(body) if score is None else score
        first = self.weak if score >= threshold else self.strong
        second = self.strong if first == self.weak else self.weak
        rank = {first: 0, second: 1}
        return sorted(ds, key=lambda d: rank.get(d.measured_as, 2))

    def save(self, path: Path) -> None:
        """A JSON file `strategy: learned` reads."""
        path.write_text(json.dumps({
            "kind": "openk2-route-learned", "weak": self.weak, "strong": self.strong,
            "features": self.features, "dim": self.dim, "bias": self.bias,
            "trained_on": self.trained_on,
            "weights": [round(float(w), 6) for w in self.weights]}) + "\n")

    @classmethod
    def load(cls, path: Path) -> LearnedRouter:
        """Read a model file; another file is a clear error."""
        try:
            data = json.loads(path.read_text())
            if data.get("kind") != "openk2-route-learned":
                raise ValueError("kind is not openk2-route-learned")
            weights = np.asarray(data["weights"], dtype=float)
            if weights.shape != (_DENSE + int(data["dim"]),):
                raise ValueError("weights do not match dim")
            kind = data.get("features", "hashed")
            if kind not in FEATURE_KINDS:
                raise ValueError(f"features {kind!r} is not one of {FEATURE_KINDS}")
            if kind == "embedding" and int(data["dim"]) != EMBED_DIM:
                raise ValueError(f"embedding features have {EMBED_DIM} dimensions")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not an openk2 route-train model ({exc})") from exc
        router = cls(weak=data["weak"], strong=data["strong"], weights=weights,
                     bias=float(data["bias"]), dim=int(data["dim"]),
                     trained_on=int(data.get("trained_on", 0)), features=kind)
        if router.heavy:
            router.win_score({"messages": []})  # load the embedding model now, not mid-request
        return router


def train(examples: list[tuple[dict[str, Any], float]], weak: str, strong: str,
          l2: float = 1e-3, steps: int = 400, features: str = "hashed") -> LearnedRouter:
    """Fit the classifier on (request body, label in [0, 1]) pairs: full-batch gradient
    descent on the L2-regularised log loss (convex, so the result does not depend on luck)."""
    if len(examples) < 2:
        raise ValueError(f"need at least 2 training examples, got {len(examples)}")
    if features not in FEATURE_KINDS:
        raise ValueError(f"features must be one of {FEATURE_KINDS}, got {features!r}")
    dim = _dim_for(features)
    x = featurize_many([body for body, _ in examples], features, dim)
    y = np.asarray([label for _, label in examples], dtype=float)
    w, b = np.zeros(x.shape[1]), 0.0
    lr = 1.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w + b, -50, 50)))
        grad = p - y
        w -= lr * (x.T @ grad / len(y) + l2 * w)
        b -= lr * float(grad.mean())
    return LearnedRouter(weak=weak, strong=strong, weights=w, bias=b, dim=dim,
                         trained_on=len(examples), features=features)
