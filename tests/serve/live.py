"""A real uvicorn server on a free localhost port, run on a thread, plus the models tests serve.

`ScriptedLM` obeys the model contract and reads its whole context back from the latent cache
(each latent stores the token id and position), then emits a fixed script after the assistant
header. It lets tests force exact outputs (tool calls, malformed calls) through the real engine,
cache, detokenizer and parsers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import torch
import uvicorn
from torch import nn

from openk2.engine.async_engine import AsyncLLMEngine
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.model.cache import LatentCache
from openk2.serve.api import create_app
from openk2.serve.media import MediaConfig
from openk2.serve.state import ConcurrencyLimiter, ServerState


class LiveServer:
    """uvicorn serving `state` on 127.0.0.1:<free port> until `stop()`."""

    def __init__(self, state: ServerState, app: object | None = None) -> None:
        """`app`: the ASGI app to serve (default: `create_app(state)`, the bare OpenAI API)."""
        self.state = state
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app or create_app(state), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self._thread.start()
        for _ in range(1500):
            if self._server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(20)
        self._sock.close()


@contextlib.contextmanager
def serving(
    model: nn.Module,
    tokenizer: object,
    name: str = "debug",
    *,
    api_keys: list[str] | None = None,
    max_concurrency: int | None = None,
    engine: EngineConfig | None = None,
    media: MediaConfig | None = None,
) -> Iterator[LiveServer]:
    """Serve `model` for the duration of a `with` block."""
    config = engine or EngineConfig(
        max_model_len=1024, max_num_seqs=32, max_num_batched_tokens=256, num_blocks=160
    )
    state = ServerState(
        engine=AsyncLLMEngine(LLMEngine(model, tokenizer, config)),
        tokenizer=tokenizer,
        served_model_names=[name],
        api_keys=api_keys or [],
        limiter=ConcurrencyLimiter(max_concurrency),
        media=media or MediaConfig(),
    )
    server = LiveServer(state).start()
    try:
        yield server
    finally:
        server.stop()


class ScriptedLM(nn.Module):
    """Emits `script` (token ids) after the last assistant header, then `<|im_end|>`."""

    def __init__(self, tokenizer: object, script: list[int] | None = None) -> None:
        super().__init__()
        tok = tokenizer
        self.config = SimpleNamespace(
            vocab_size=tok.vocab_size,  # type: ignore[attr-defined]
            num_hidden_layers=2,
            kv_lora_rank=1,
            qk_rope_head_dim=1,
            max_position_embeddings=4096,
        )
        self._anchor = tok.token_id("<|im_assistant|>")  # type: ignore[attr-defined]
        self._think = (tok.token_id("<think>"), tok.token_id("</think>"))  # type: ignore[attr-defined]
        self._end = tok.im_end_id  # type: ignore[attr-defined]
        self.script = script or []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: LatentCache | None = None,
        *,
        logits_to_keep: int = 0,
    ) -> torch.Tensor:
        B, T = input_ids.shape
        if positions is None:
            positions = torch.arange(T).expand(B, T)
        latent = torch.stack([input_ids.float(), positions.float()], dim=-1)
        ctx, mask = latent, None
        for layer in range(self.config.num_hidden_layers):
            if cache is not None:
                ctx, mask = cache.update(layer, latent)
        logits = torch.full((B, 1, self.config.vocab_size), -30.0)
        for b in range(B):
            visible = ctx[b] if mask is None else ctx[b][mask[b, -1]]
            history = visible[visible[:, 1].argsort(), 0].long().tolist()
            logits[b, 0, self._next(history)] = 30.0
        return logits

    def _next(self, history: list[int]) -> int:
        if self._anchor not in history:
            return self._end
        start = len(history) - history[::-1].index(self._anchor)
        header_end = history.index(self._think[0], start) + 1
        if header_end < len(history) and history[header_end] == self._think[1]:
            header_end += 1  # instant mode: the prompt closed the think block
        k = len(history) - header_end
        return self.script[k] if k < len(self.script) else self._end
