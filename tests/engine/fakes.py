"""Small stand-ins for the model and tokenizer that obey the engine's contracts.

`LatentToyLM` really reads its context through the `LatentCache` it is given, so any bug in the
paged cache (wrong slots, wrong masks, stale pages) changes its greedy output compared with a
full recompute. `ByteTokenizer` is byte-level UTF-8 with a few named specials.
"""

from __future__ import annotations

import codecs
from types import SimpleNamespace

import torch
from torch import nn

from openk2.model.cache import LatentCache

SPECIALS = {"[EOS]": 256, "<|im_end|>": 257, "<think>": 258, "</think>": 259}


class ByteTokenizer:
    """UTF-8 bytes are ids 0..255; specials above; `vocab_size` pads the id space."""

    def __init__(self, vocab_size: int = 300) -> None:
        self.vocab_size = vocab_size
        self.eos_id = SPECIALS["[EOS]"]
        self.im_end_id = SPECIALS["<|im_end|>"]
        self._names = {v: k for k, v in SPECIALS.items()}

    @property
    def stop_ids(self) -> list[int]:
        return [self.eos_id, self.im_end_id]

    def is_special(self, token_id: int) -> bool:
        return token_id >= 256

    def token_bytes(self, token_id: int) -> bytes:
        if token_id < 256:
            return bytes([token_id])
        return self._names.get(token_id, f"<|r{token_id}|>").encode()

    def encode(self, text: str, allow_special: bool = True) -> list[int]:
        ids: list[int] = []
        while text:
            name = next((n for n in SPECIALS if allow_special and text.startswith(n)), None)
            if name:
                ids.append(SPECIALS[name])
                text = text[len(name) :]
            else:
                ids.extend(text[0].encode())
                text = text[1:]
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        dec = self.incremental_decoder(skip_special_tokens=skip_special_tokens)
        return "".join(dec.push(i) for i in ids) + dec.flush()

    def incremental_decoder(self, *, skip_special_tokens: bool = False) -> ByteDecoder:
        return ByteDecoder(self._names, skip_special_tokens)


class ByteDecoder:
    def __init__(self, names: dict[int, str], skip: bool) -> None:
        self._names = names
        self._skip = skip
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        if token_id < 256:
            return self._utf8.decode(bytes([token_id]))
        text = self._utf8.decode(b"", final=True)
        return text if self._skip else text + self._names.get(token_id, f"<|r{token_id}|>")

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


class LatentToyLM(nn.Module):
    """Per layer: latent = W h; attention of q = U h over cached latents; residual update."""

    def __init__(
        self, vocab_size: int = 300, dim: int = 32, layers: int = 2, latent: int = 12, seed: int = 0
    ) -> None:
        super().__init__()
        self.config = SimpleNamespace(
            vocab_size=vocab_size,
            num_hidden_layers=layers,
            kv_lora_rank=latent - 4,
            qk_rope_head_dim=4,
            max_position_embeddings=1024,
        )
        gen = torch.Generator().manual_seed(seed)
        self.embed = nn.Parameter(torch.randn(vocab_size, dim, generator=gen, dtype=torch.float64))
        self.pos = nn.Parameter(torch.randn(1024, dim, generator=gen, dtype=torch.float64) * 0.3)
        self.kv = nn.ParameterList(
            [
                nn.Parameter(
                    torch.randn(latent, dim, generator=gen, dtype=torch.float64) / dim**0.5
                )
                for _ in range(layers)
            ]
        )
        self.q = nn.ParameterList(
            [
                nn.Parameter(torch.randn(latent, dim, generator=gen, dtype=torch.float64))
                for _ in range(layers)
            ]
        )
        self.out = nn.ParameterList(
            [
                nn.Parameter(
                    torch.randn(dim, latent, generator=gen, dtype=torch.float64) / latent**0.5
                )
                for _ in range(layers)
            ]
        )
        self.head = nn.Parameter(torch.randn(vocab_size, dim, generator=gen, dtype=torch.float64))
        self.calls: list[tuple[int, int]] = []

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        B, T = input_ids.shape
        self.calls.append((B, T))
        if positions is None:
            positions = torch.arange(T).expand(B, T)
        h = self.embed[input_ids] + self.pos[positions]
        for i in range(len(self.kv)):
            latent = h @ self.kv[i].T
            if cache is None:
                ctx, mask = latent, torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T)
            else:
                ctx, mask = cache.update(i, latent)
                if mask is None:  # the contract's plain causal: the T new tokens last in S
                    S = ctx.shape[1]
                    rows = torch.arange(T).unsqueeze(1) + (S - T)
                    mask = (torch.arange(S) <= rows).expand(B, T, S)
            scores = (h @ self.q[i].T) @ ctx.transpose(1, 2) / ctx.shape[-1] ** 0.5
            attn = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            h = h + torch.tanh((attn @ ctx) @ self.out[i].T)
        logits = h @ self.head.T
        return logits[:, -logits_to_keep:] if logits_to_keep else logits


def reference_greedy(
    model: LatentToyLM, prompt: list[int], max_tokens: int, stop_ids: frozenset[int] = frozenset()
) -> list[int]:
    """Greedy decoding by full recompute without any cache: the ground truth."""
    ids = list(prompt)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = model(torch.tensor([ids]))[0, -1]
            token = int(logits.argmax())
            out.append(token)
            ids.append(token)
            if token in stop_ids:
                break
    return out
