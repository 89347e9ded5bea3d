"""Kimi tokenizer, K2.6 chat template and streaming output parsers. Imports no torch.

`Tokenizer` loads the real `tiktoken.model` format; `default_tokenizer()` is the bundled
8192-id vocabulary for small models. The chat protocol lives in `openk2.tokenizer.chat` and the
output parsers in `openk2.tokenizer.parse`. `resolve_tokenizer` is the one rule for which
tokenizer a model directory (or preset) uses.
"""

from openk2.tokenizer.incremental import IncrementalDecoder
from openk2.tokenizer.resolve import (
    TokenizerNotFoundError,
    TokenizerSource,
    load_tokenizer,
    resolve_tokenizer,
)
from openk2.tokenizer.tokenizer import Tokenizer, default_tokenizer, default_tokenizer_path

__all__ = [
    "IncrementalDecoder",
    "Tokenizer",
    "TokenizerNotFoundError",
    "TokenizerSource",
    "default_tokenizer",
    "default_tokenizer_path",
    "load_tokenizer",
    "resolve_tokenizer",
]
