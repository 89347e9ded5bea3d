"""The synchronous engine API: add requests, call `step()`, read per-sequence deltas.

One step = schedule (scheduler) -> forward over the paged cache (runner) -> sample (sampler) ->
append tokens, detokenize, check stop conditions, free finished sequences' pages. The async
server drives the same object from a background thread (`async_engine.py`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence as Seq
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from openk2.engine.block_manager import BlockManager
from openk2.engine.cache import PagedLatentCache
from openk2.engine.config import EngineConfig
from openk2.engine.detokenizer import EngineTokenizer, StopStringDetokenizer
from openk2.engine.isolation import describe, forward_isolating, sample_isolating
from openk2.engine.lora import AdapterSet
from openk2.engine.media import MediaSpan, locate_media
from openk2.engine.memory import context_limit, default_cache_bytes
from openk2.engine.outputs import EngineStats, RequestOutput
from openk2.engine.runner import CausalLM, ModelRunner
from openk2.engine.sampler import SampleRow
from openk2.engine.sampling_params import SamplingParams
from openk2.engine.scheduler import Scheduler
from openk2.engine.sequence import FinishReason, Sequence, TokenLogprob
from openk2.model.layers.linear import enable_packed_gemms
from openk2.model.vision.processor import MediaItem

log = logging.getLogger(__name__)


class ContextLengthError(ValueError):
    """The prompt plus the requested output does not fit the model's context."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class LLMEngine:
    """Continuous-batching generation over a paged latent cache (single process)."""

    def __init__(
        self,
        model: CausalLM,
        tokenizer: EngineTokenizer,
        config: EngineConfig | None = None,
        *,
        adapters: AdapterSet | None = None,
    ) -> None:
        """`adapters`: LoRA adapters already attached to `model` that requests may pick by
        name (`SamplingParams.adapter`)."""
        self.config = config or EngineConfig()
        self.tokenizer = tokenizer
        model_cfg = _model_config(model)
        self.vocab_size = int(model_cfg.vocab_size)
        model_max = int(getattr(model_cfg, "max_position_embeddings", 0) or 2**31 - 1)
        self.cache = _build_cache(model, model_cfg, self.config, model_max)
        self.block_manager = BlockManager(
            self.cache.num_blocks, self.config.block_size, self.config.enable_prefix_caching
        )
        self.scheduler = Scheduler(
            self.block_manager, self.config.max_num_seqs, self.config.max_num_batched_tokens
        )
        self.adapters = adapters
        self.runner = ModelRunner(
            model, self.cache, adapters, encoder_cache_tokens=self.config.encoder_cache_tokens
        )
        self.media_pad_id: int | None = (
            int(model.media_pad_token_id) if self.runner.multimodal else None  # type: ignore[attr-defined]
        )
        if self.config.packed_gemms and isinstance(model, nn.Module):
            enable_packed_gemms(model)
        self.max_model_len, self.limited_by = context_limit(
            model_max, self.config.max_model_len, self.cache.num_blocks * self.config.block_size
        )
        self.stop_ids = frozenset(int(i) for i in tokenizer.stop_ids)
        self._requests: dict[str, list[Sequence]] = {}
        self._ids = itertools.count()
        self.stats = EngineStats(num_blocks=self.cache.num_blocks, block_size=self.cache.block_size)

    # ---- requests -------------------------------------------------------------------------

    def add_request(
        self,
        prompt_token_ids: list[int],
        params: SamplingParams | None = None,
        request_id: str | None = None,
        media: Seq[MediaItem] = (),
        media_keys: Seq[bytes] | None = None,
    ) -> str:
        """Queue a request (n sequences); raises ValueError for prompts that cannot run.

        `media`: the encoder inputs of a multimodal prompt, in prompt order; `prompt_token_ids`
        holds their expanded `<|media_pad|>` runs (`processor.expand_media_pads`);
        `media_keys` their `media.content_key`s if already computed.
        """
        params = params or SamplingParams()
        request_id = request_id or f"req-{next(self._ids)}"
        if request_id in self._requests:
            raise ValueError(f"request id {request_id!r} is already in use")
        self._check_prompt(prompt_token_ids)
        self._check_adapter(params.adapter)
        spans = self._locate_media(prompt_token_ids, media, media_keys)
        max_tokens = self.resolve_max_tokens(len(prompt_token_ids), params.max_tokens)
        seqs = [
            Sequence(request_id, i, prompt_token_ids, params, max_tokens, media=spans)
            for i in range(params.n)
        ]
        for seq in seqs:
            seq.detokenizer = self._detokenizer(params)
            self.scheduler.add(seq)
        self._requests[request_id] = seqs
        self.stats.prompt_tokens += len(prompt_token_ids)
        self.stats.sequences_added += len(seqs)
        self.stats.media_items += len(spans)
        return request_id

    def _check_adapter(self, name: str | None) -> None:
        known = self.adapters.names if self.adapters is not None else []
        if name is not None and name not in known:
            raise ValueError(f"unknown LoRA adapter {name!r}; loaded: {known or 'none'}")

    def resolve_max_tokens(self, prompt_len: int, max_tokens: int | None) -> int:
        """The output budget, or ContextLengthError when prompt + output exceed the context."""
        limit = self.max_model_len
        wanted = max_tokens if max_tokens is not None else limit - prompt_len
        if prompt_len + max(wanted, 1) > limit:
            raise ContextLengthError(
                f"This model's maximum context length is {limit} tokens (set by "
                f"{self.limited_by}). However, you requested "
                f"{prompt_len + max(wanted, 1)} tokens ({prompt_len} in the messages, "
                f"{max(wanted, 1)} in the completion). Please reduce the length of the "
                "messages or completion.",
                limit,
            )
        return wanted

    def abort_request(self, request_id: str) -> bool:
        """Stop a request now and free its pages; False if it is unknown or already done."""
        seqs = self._requests.pop(request_id, None)
        if seqs is None:
            return False
        for seq in seqs:
            if not seq.is_finished:
                self.scheduler.finish(seq, FinishReason.ABORT)
                self._count_finish(FinishReason.ABORT)
        self._refresh_stats()
        return True

    def abort_all(self) -> list[str]:
        """Abort every request (after a failed step); returns their ids."""
        request_ids = list(self._requests)
        for request_id in request_ids:
            self.abort_request(request_id)
        return request_ids

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    # ---- stepping -------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one batch; return a delta for every sequence that produced a token or failed.

        A sequence that cannot be run, sampled, guided or detokenized finishes alone with
        finish_reason "error" (its pages freed); the rest of the batch goes on (`isolation.py`).
        """
        out = self.scheduler.schedule()
        if out.is_empty:
            self._refresh_stats()
            return []
        forward = forward_isolating(self.runner, out.scheduled)
        failed = {id(item) for item, _ in forward.failed}
        out.scheduled = [item for item in out.scheduled if id(item) not in failed]
        self.scheduler.update_from_output(out)
        outputs = [self._fail(item.seq, exc) for item, exc in forward.failed]
        outputs += self._sample_and_append([r.seq for r in forward.rows], forward.logits_RV())
        self.stats.steps += 1
        self.stats.last_batch_size = len(out.scheduled)
        self.stats.last_batch_tokens = out.num_batched_tokens
        self._refresh_stats()
        return outputs

    def _sample_and_append(self, seqs: list[Sequence], logits: torch.Tensor) -> list[RequestOutput]:
        if not seqs:
            return []
        sampled = sample_isolating(logits, [SampleRow(s, self._banned(s)) for s in seqs])
        outputs = []
        for seq, tok in zip(seqs, sampled, strict=True):
            if isinstance(tok, Exception):
                outputs.append(self._fail(seq, tok))
                continue
            try:
                outputs.append(self._append(seq, tok))
            except Exception as exc:
                log.exception("sequence %s:%d failed after sampling", seq.request_id, seq.index)
                outputs.append(self._fail(seq, exc))
        return outputs

    def _fail(self, seq: Sequence, exc: Exception) -> RequestOutput:
        """Finish one sequence with an error and free its pages; its neighbours are untouched."""
        self.scheduler.finish(seq, FinishReason.ERROR)
        self._count_finish(FinishReason.ERROR)
        self._forget_if_done(seq.request_id)
        return RequestOutput(
            request_id=seq.request_id,
            index=seq.index,
            token_ids=[],
            text="",
            logprobs=[] if seq.params.logprobs is not None else None,
            finished=True,
            finish_reason=FinishReason.ERROR.value,
            num_prompt_tokens=seq.num_prompt_tokens,
            num_output_tokens=seq.num_output_tokens,
            num_cached_tokens=seq.num_cached_tokens,
            error=describe(exc),
        )

    def generate(
        self, prompts: list[list[int]], params: SamplingParams | None = None
    ) -> list[list[RequestOutput]]:
        """Run prompts to completion; per prompt, one merged output per choice."""
        ids = [self.add_request(p, params) for p in prompts]
        merged: dict[tuple[str, int], RequestOutput] = {}
        while self.has_unfinished_requests():
            for delta in self.step():
                key = (delta.request_id, delta.index)
                merged[key] = _merge(merged.get(key), delta)
        n = (params or SamplingParams()).n
        return [[merged[(rid, i)] for i in range(n)] for rid in ids]

    # ---- internals ------------------------------------------------------------------------

    def _append(self, seq: Sequence, tok: TokenLogprob) -> RequestOutput:
        seq.append_token(tok.token_id)
        if seq.guide is not None:
            seq.guide.advance(tok.token_id)
        self.stats.generation_tokens += 1
        text, reason = self._text_and_stop(seq, tok.token_id)
        if reason is not None:
            self.scheduler.finish(seq, reason)
            self._count_finish(reason)
            self._forget_if_done(seq.request_id)
        return RequestOutput(
            request_id=seq.request_id,
            index=seq.index,
            token_ids=[tok.token_id],
            text=text,
            logprobs=[tok] if seq.params.logprobs is not None else None,
            finished=reason is not None,
            finish_reason=reason.value if reason is not None else None,
            num_prompt_tokens=seq.num_prompt_tokens,
            num_output_tokens=seq.num_output_tokens,
            num_cached_tokens=seq.num_cached_tokens,
        )

    def _text_and_stop(self, seq: Sequence, token_id: int) -> tuple[str, FinishReason | None]:
        """Text delta of the new token and the finish reason it causes, if any."""
        detok = seq.detokenizer
        assert detok is not None
        params = seq.params
        eos = token_id in self.stop_ids and not params.ignore_eos
        if (eos or token_id in params.stop_token_ids) and seq.num_output_tokens > params.min_tokens:
            return detok.finish(), FinishReason.STOP
        text, stopped = detok.push(token_id)
        if stopped:
            return text, FinishReason.STOP
        if seq.num_output_tokens >= seq.max_tokens or len(seq) >= self.max_model_len:
            return text + detok.finish(), FinishReason.LENGTH
        return text, None

    def _banned(self, seq: Sequence) -> frozenset[int]:
        params = seq.params
        banned = set(params.banned_token_ids)
        if seq.num_output_tokens < params.min_tokens:
            banned |= self.stop_ids | set(params.stop_token_ids)
        return frozenset(banned)

    def _detokenizer(self, params: SamplingParams) -> StopStringDetokenizer:
        decoder = self.tokenizer.incremental_decoder(skip_special_tokens=params.skip_special_tokens)
        return StopStringDetokenizer(decoder, params.stop, params.include_stop_str_in_output)

    def _check_prompt(self, prompt_token_ids: list[int]) -> None:
        if not prompt_token_ids:
            raise ValueError("the prompt is empty")
        bad = [t for t in prompt_token_ids if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"token ids out of range [0, {self.vocab_size}): {bad[:5]}")

    def _locate_media(
        self, prompt_token_ids: list[int], media: Seq[MediaItem], keys: Seq[bytes] | None
    ) -> tuple[MediaSpan, ...]:
        if self.media_pad_id is None:
            if media:
                raise ValueError("this model reads text only; it has no vision tower")
            return ()
        return locate_media(prompt_token_ids, media, self.media_pad_id, keys)

    def _forget_if_done(self, request_id: str) -> None:
        seqs = self._requests.get(request_id, [])
        if all(s.is_finished for s in seqs):
            self._requests.pop(request_id, None)

    def _count_finish(self, reason: FinishReason) -> None:
        self.stats.finished[reason.value] = self.stats.finished.get(reason.value, 0) + 1

    def _refresh_stats(self) -> None:
        s = self.stats
        s.num_running = len(self.scheduler.running)
        s.num_waiting = len(self.scheduler.waiting)
        s.num_used_blocks = self.block_manager.num_used_blocks
        s.prefix_hit_tokens = self.block_manager.prefix_hit_tokens
        s.prefix_query_tokens = self.block_manager.prefix_query_tokens
        s.preemptions = self.scheduler.num_preemptions
        s.media_items_encoded = self.runner.encoder.num_encoded

    def snapshot(self) -> EngineStats:
        """A copy of the current stats, safe to hand to another thread."""
        return replace(self.stats, finished=dict(self.stats.finished))


def _merge(acc: RequestOutput | None, delta: RequestOutput) -> RequestOutput:
    if acc is None:
        return replace(delta, token_ids=list(delta.token_ids))
    acc.token_ids += delta.token_ids
    acc.text += delta.text
    if acc.logprobs is not None and delta.logprobs is not None:
        acc.logprobs += delta.logprobs
    acc.finished, acc.finish_reason = delta.finished, delta.finish_reason
    acc.error = delta.error
    acc.num_output_tokens = delta.num_output_tokens
    return acc


def _model_config(model: CausalLM) -> Any:
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError("the model needs a `config` with HF keys (num_hidden_layers, ...)")
    return config


def _build_cache(
    model: CausalLM, cfg: Any, config: EngineConfig, model_max: int
) -> PagedLatentCache:
    """Size the page pool from the config (num_blocks, a memory budget, or free memory)."""
    param = next(iter(model.parameters()))  # type: ignore[attr-defined]
    latent_dim = int(cfg.kv_lora_rank) + int(cfg.qk_rope_head_dim)
    num_layers = int(cfg.num_hidden_layers)
    per_token = PagedLatentCache.bytes_per_token(num_layers, latent_dim, param.dtype)
    budget = config.cache_memory_bytes
    if budget is None:
        max_len = min(model_max, config.max_model_len or model_max) + config.block_size
        budget = default_cache_bytes(max_len, per_token, param.device)
    num_blocks = config.num_blocks or budget // (per_token * config.block_size)
    if num_blocks < 1:
        raise ValueError("cache_memory_bytes is too small for a single page")
    return PagedLatentCache(
        num_layers=num_layers,
        num_blocks=int(num_blocks),
        block_size=config.block_size,
        latent_dim=latent_dim,
        dtype=param.dtype,
        device=param.device,
    )
