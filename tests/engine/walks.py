"""A random "model" for grammar tests: it proposes only tokens the grammar allows."""

import random
import re

from openk2.engine.grammar import GrammarMatcher
from openk2.engine.guided import allowed_tokens


def walk(matcher: GrammarMatcher, tok: object, seed: int, limit: int = 3000) -> list[int]:
    """Random allowed tokens until a stop token; every other pick prefers closing characters
    (quotes, brackets, digits), which keeps unbounded parts of a schema short."""
    rng = random.Random(seed)
    vocab = tok.vocab_size  # type: ignore[attr-defined]
    out: list[int] = []
    for _ in range(limit):
        allowed = allowed_tokens([matcher], vocab)[0].nonzero().flatten().tolist()
        assert allowed, "the grammar allowed nothing"
        closers = [t for t in allowed if re.search(r'["\]}0-9]', _text(tok, t))]
        token = rng.choice(closers if closers and rng.random() < 0.5 else allowed)
        out.append(token)
        if token in tok.stop_ids:  # type: ignore[attr-defined]
            return out
        matcher.advance(token)
    raise AssertionError("the walk did not finish")


def _text(tok: object, token: int) -> str:
    return tok.token_bytes(token).decode("utf-8", "replace")  # type: ignore[attr-defined]


def reply(tok: object, ids: list[int]) -> str:
    """The text before the final stop token."""
    return tok.decode(ids[:-1])  # type: ignore[attr-defined]
