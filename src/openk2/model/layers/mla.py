"""Multi-head latent attention (MLA) with a naive and an absorbed (latent-space) form.

Shape legend: B batch, T new tokens, S attendable tokens, H heads, N nope dims, R rope dims,
V value dims, L kv_lora_rank, C = L + R latent width, Q = N + R query/key head width.

Naive form (training, prefill): expand every cached latent into per-head keys and values with
`kv_b_proj`, then plain attention (SDPA). Cost grows with S * L * H * (N + V).
Blocked form (long inference calls): the absorbed form in query x key tiles with an online
softmax (`blocked_attention.py`), so neither the [T, S] scores nor an up-projected prefix exist.
Absorbed form (decode): fold the key up-projection into the queries (q_lat = W_UK^T q_nope) and
the value up-projection into the output, so attention runs directly on the C-wide latents, as
MQA with H query heads. Cost grows with T * S * H * C. `_prefers_absorbed` picks the cheaper one;
both compute the same function (tests check it).

`q_b_proj` rows are head-major ([h*Q, h*Q+N) nope, then R rope rows); `kv_b_proj` rows are
[h*(N+V), h*(N+V)+N) for K_nope(h), then V rows for V(h).

Masks: every query must be allowed at least one slot (normally itself); a fully masked row
gives NaN, as in any softmax attention. Outside autograd the absorbed form keeps contiguous
copies of W_UK / W_UV (the size of `kv_b_proj`, about 0.05% of K2.6's weights).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from openk2.model.cache import LatentCache
from openk2.model.config import ModelConfig
from openk2.model.layers.blocked_attention import DEFAULT_WORKSPACE, blocked_latent_attention
from openk2.model.layers.decode_tables import (
    DecodeFormat,
    DerivedTable,
    block_matvec,
    encode_rows,
    plain_weight,
    table_linear,
)
from openk2.model.layers.linear import FastPath, PackedGemm, use_packed
from openk2.model.layers.norm import LATENT_NORM_EPS, RMSNorm
from openk2.model.layers.rope import apply_rope, softmax_scale

MlaMode = Literal["auto", "naive", "absorbed", "blocked"]


class MLA(nn.Module):
    """Attention block of one decoder layer (module names follow the HF checkpoint).

    Training hook: with `record_max_logit = True`, each forward stores `max_logit_H`, the
    per-head max pre-softmax logit (softmax scale included) over the batch, detached, fp32.
    Inference without autograd: q_a (or q_proj) and kv_a run as one product, q_b and o_proj on
    derived copies too; one token on decode tables, and with `packed_gemms` on (`linear.py`)
    several rows on packed GEMMs. Hooked projections (LoRA) run as modules.
    """

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.nope_dim, self.rope_dim = config.qk_nope_head_dim, config.qk_rope_head_dim
        self.v_dim, self.kv_rank = config.v_head_dim, config.kv_lora_rank
        self.scale = softmax_scale(config)
        self.rope_interleave = config.rope_interleave
        d, h, q_dim = config.hidden_size, self.num_heads, config.qk_head_dim
        if config.q_lora_rank is None:
            self.q_proj = nn.Linear(d, h * q_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(d, config.q_lora_rank, bias=False)
            self.q_a_layernorm = RMSNorm(config.q_lora_rank, LATENT_NORM_EPS)
            self.q_b_proj = nn.Linear(config.q_lora_rank, h * q_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(d, config.latent_dim, bias=False)
        self.kv_a_layernorm = RMSNorm(self.kv_rank, LATENT_NORM_EPS)
        self.kv_b_proj = nn.Linear(self.kv_rank, h * (self.nope_dim + self.v_dim), bias=False)
        self.o_proj = nn.Linear(h * self.v_dim, d, bias=False)
        self.mode: MlaMode = "auto"
        self.workspace = DEFAULT_WORKSPACE
        """Score elements one attention tile may hold (see `blocked_attention.py`)."""
        self._absorbed: tuple[torch.Tensor, torch.Tensor] | None = None
        self._absorbed_key: tuple[object, ...] | None = None
        self._tables = {name: DerivedTable() for name in ("in", "q_b", "o", "uk", "uv")}
        self.decode_format: DecodeFormat = "native"
        self.packed_gemms = False
        self._packs = {name: PackedGemm() for name in ("in", "q_b", "o")}
        self.record_max_logit = False
        self.max_logit_H: torch.Tensor | None = None

    def forward(
        self,
        x_BTD: torch.Tensor,
        rotation_BTP: torch.Tensor,
        cache: LatentCache | None = None,
    ) -> torch.Tensor:
        """Attend the T new tokens over themselves and, with a cache, over its earlier latents."""
        path = self._fast_path(x_BTD)
        q_BTX, kv_BTC = self._project(x_BTD, path)
        q_nope_BTHN, q_pe_BTHR = self._queries(q_BTX, rotation_BTP)
        latent_BTC = self._latents(kv_BTC, rotation_BTP)
        mask_BTS = None
        latent_BSC = latent_BTC
        if cache is not None:
            latent_BSC, mask_BTS = cache.update(self.layer_idx, latent_BTC)
        mask = _attention_mask(mask_BTS, latent_BTC.shape[1], latent_BSC.shape[1], x_BTD.device)
        if self._uses_blocked(latent_BTC.shape[0], latent_BTC.shape[1], latent_BSC.shape[1]):
            out_BTHV = self._attend_blocked(q_nope_BTHN, q_pe_BTHR, latent_BSC, mask_BTS)
        elif self._prefers_absorbed(latent_BTC.shape[1], latent_BSC.shape[1]):
            out_BTHV = self._attend_absorbed(q_nope_BTHN, q_pe_BTHR, latent_BSC, mask)
        else:
            out_BTHV = self._attend_naive(q_nope_BTHN, q_pe_BTHR, latent_BSC, mask)
        out_BTX = out_BTHV.flatten(-2)
        if path is None:
            return self.o_proj(out_BTX)
        return self._derived("o", path, out_BTX, self.o_proj.weight)

    def packed_gemm_weights(self) -> list[tuple[PackedGemm, tuple[torch.Tensor, ...]]]:
        """Each packed GEMM with the weights it packs (see `enable_packed_gemms`); none when
        a projection is not a plain linear (hooked or quantized)."""
        if not self._plain():
            return []
        q_first = self.q_proj if hasattr(self, "q_proj") else self.q_a_proj
        pairs = [(self._packs["in"], (q_first.weight, self.kv_a_proj_with_mqa.weight))]
        if hasattr(self, "q_b_proj"):
            pairs.append((self._packs["q_b"], (self.q_b_proj.weight,)))
        return [*pairs, (self._packs["o"], (self.o_proj.weight,))]

    def _fast_path(self, x_BTD: torch.Tensor) -> FastPath | None:
        """Which derived weights this forward's projections use, if any (never with autograd
        or hooked projections)."""
        if torch.is_grad_enabled() or not self._plain():
            return None
        if x_BTD.numel() == x_BTD.shape[-1]:
            return "table"
        return "packed" if use_packed(self.packed_gemms, x_BTD, self.o_proj.weight) else None

    def _project(
        self, x_BTD: torch.Tensor, path: FastPath | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries [B, T, H*Q], kv_a output [B, T, C]); on derived weights q_a (or q_proj)
        and kv_a are one product."""
        direct = hasattr(self, "q_proj")
        first = self.q_proj if direct else self.q_a_proj
        kv_a = self.kv_a_proj_with_mqa
        if path is None:
            q_BTX, kv_BTC = first(x_BTD), kv_a(x_BTD)
        else:
            both = self._derived("in", path, x_BTD, first.weight, kv_a.weight)
            q_BTX, kv_BTC = both.split([first.out_features, kv_a.out_features], dim=-1)
        if direct:
            return q_BTX, kv_BTC
        q_BTX = self.q_a_layernorm(q_BTX)
        if path is None:
            return self.q_b_proj(q_BTX), kv_BTC
        return self._derived("q_b", path, q_BTX, self.q_b_proj.weight), kv_BTC

    def _derived(
        self, name: str, path: FastPath, x_BTI: torch.Tensor, *weights: torch.Tensor
    ) -> torch.Tensor:
        """x times the concatenation of `weights` (transposed) on the decode table or the
        packed copy named `name`."""
        if path == "table":
            return table_linear(self._tables[name], x_BTI, weights, self.decode_format)
        return self._packs[name](x_BTI, *weights)

    def _plain(self) -> bool:
        """Whether every projection may be read as a plain weight (no hooks, no wrappers)."""
        names = ("q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "o_proj")
        modules = self._modules
        return all(plain_weight(modules[n]) is not None for n in names if n in modules)

    def _queries(
        self, q_BTX: torch.Tensor, rotation_BTP: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_nope [B,T,H,N], rotated q_pe [B,T,H,R])."""
        q_BTHQ = q_BTX.unflatten(-1, (self.num_heads, -1))
        q_nope_BTHN, q_pe_BTHR = q_BTHQ.split([self.nope_dim, self.rope_dim], dim=-1)
        q_pe_BTHR = apply_rope(q_pe_BTHR, rotation_BTP.unsqueeze(2), self.rope_interleave)
        return q_nope_BTHN, q_pe_BTHR

    def _latents(self, kv_BTC: torch.Tensor, rotation_BTP: torch.Tensor) -> torch.Tensor:
        """What the cache stores per token: [normalised c_kv ; rotated k_pe], [B, T, C]."""
        c_kv_BTL, k_pe_BTR = kv_BTC.split([self.kv_rank, self.rope_dim], dim=-1)
        c_kv_BTL = self.kv_a_layernorm(c_kv_BTL)
        k_pe_BTR = apply_rope(k_pe_BTR, rotation_BTP, self.rope_interleave)
        return torch.cat([c_kv_BTL, k_pe_BTR], dim=-1)

    def _uses_blocked(self, batch: int, new: int, total: int) -> bool:
        """Blocked latent attention for inference calls whose full score tensor would exceed
        the workspace (long prompts, chunks over a long prefix), or when forced."""
        if torch.is_grad_enabled() or self.mode in ("naive", "absorbed"):
            return False
        if self.mode == "blocked":
            return True
        return new > 1 and batch * new * self.num_heads * total > self.workspace

    def _attend_blocked(
        self,
        q_nope_BTHN: torch.Tensor,
        q_pe_BTHR: torch.Tensor,
        latent_BSC: torch.Tensor,
        mask_BTS: torch.Tensor | None,
    ) -> torch.Tensor:
        """Absorbed attention in key blocks with an online softmax: no [T, S] scores, no
        up-projected prefix; [B, T, H, V]."""
        batch, new, heads, _ = q_nope_BTHN.shape
        w_uk_HNL, w_uv_HVL = self._absorbed_weights()
        q_nope_HXN = q_nope_BTHN.reshape(batch * new, heads, -1).transpose(0, 1)
        q_lat_XHL = torch.bmm(q_nope_HXN, w_uk_HNL).transpose(0, 1)
        q_XHC = torch.cat([q_lat_XHL, q_pe_BTHR.reshape(batch * new, heads, -1)], dim=-1)
        out_BTHL, best_H = blocked_latent_attention(
            q_XHC.view(batch, new, heads, -1), latent_BSC, mask_BTS,
            scale=self.scale, value_dim=self.kv_rank, workspace=self.workspace,
            with_max_logit=self.record_max_logit,
        )  # fmt: skip
        if best_H is not None:
            self.max_logit_H = best_H
        out_HXL = out_BTHL.reshape(batch * new, heads, -1).transpose(0, 1)
        out_XHV = torch.bmm(out_HXL, w_uv_HVL.transpose(1, 2)).transpose(0, 1)
        return out_XHV.reshape(batch, new, heads, -1)

    def _prefers_absorbed(self, new: int, total: int) -> bool:
        """Whether the latent-space form costs fewer multiply-adds per head for these lengths."""
        if self.mode != "auto":
            return self.mode == "absorbed"
        n, r, v, rank = self.nope_dim, self.rope_dim, self.v_dim, self.kv_rank
        naive = total * rank * (n + v) + new * total * (n + r + v)
        absorbed = new * rank * (n + v) + new * total * (2 * rank + r)
        return absorbed < naive

    def _attend_naive(
        self,
        q_nope_BTHN: torch.Tensor,
        q_pe_BTHR: torch.Tensor,
        latent_BSC: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Expanded keys/values per head; returns [B, T, H, V]."""
        c_kv_BSL, k_pe_BSR = latent_BSC.split([self.kv_rank, self.rope_dim], dim=-1)
        kv_BSHX = self.kv_b_proj(c_kv_BSL).unflatten(-1, (self.num_heads, -1))
        k_nope_BSHN, v_BSHV = kv_BSHX.split([self.nope_dim, self.v_dim], dim=-1)
        k_pe_BSHR = k_pe_BSR.unsqueeze(2).expand(-1, -1, self.num_heads, -1)
        q_BHTQ = torch.cat([q_nope_BTHN, q_pe_BTHR], dim=-1).transpose(1, 2)
        k_BHSQ = torch.cat([k_nope_BSHN, k_pe_BSHR], dim=-1).transpose(1, 2)
        v_BHSV = v_BSHV.transpose(1, 2)
        if self.record_max_logit:
            self.max_logit_H = _max_logit(q_BHTQ, k_BHSQ, mask, self.scale)
        out_BHTV = _sdpa(q_BHTQ, k_BHSQ, v_BHSV, mask, self.scale)
        return out_BHTV.transpose(1, 2)

    def _attend_absorbed(
        self,
        q_nope_BTHN: torch.Tensor,
        q_pe_BTHR: torch.Tensor,
        latent_BSC: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Attention over the latents themselves (MQA, keys [S, C], values [S, L]); [B,T,H,V].

        Rows stay in [B, T, H] order throughout (M = B*T*H query rows), so heads fold into the
        rows of one matmul per batch row and almost every reshape is a view.
        """
        batch, new, heads, _ = q_nope_BTHN.shape
        if batch * new == 1 and not torch.is_grad_enabled():
            return self._attend_one(q_nope_BTHN, q_pe_BTHR, latent_BSC, mask)
        w_uk_HNL, w_uv_HVL = self._absorbed_weights()
        q_nope_HXN = q_nope_BTHN.reshape(batch * new, heads, -1).transpose(0, 1)
        q_lat_XHL = torch.bmm(q_nope_HXN, w_uk_HNL).transpose(0, 1)
        q_XHC = torch.cat([q_lat_XHL, q_pe_BTHR.reshape(batch * new, heads, -1)], dim=-1)
        scores = _per_row_matmul(q_XHC.view(batch, new * heads, -1), latent_BSC.transpose(1, 2))
        if mask is None and new > 1:
            mask = _causal_mask(new, latent_BSC.shape[1], latent_BSC.device)
        mask_BT1S = None if mask is None else mask.transpose(1, 2)
        scores_BTHS = scores.view(batch, new, heads, -1) * self.scale
        probs_BTHS = self._probabilities(scores_BTHS, mask_BT1S, head_axis=2)
        probs = probs_BTHS.to(latent_BSC.dtype).view(batch, new * heads, -1)
        out_lat = _per_row_matmul(probs, latent_BSC[..., : self.kv_rank])
        out_HXL = out_lat.view(batch * new, heads, -1).transpose(0, 1)
        out_XHV = torch.bmm(out_HXL, w_uv_HVL.transpose(1, 2)).transpose(0, 1)
        return out_XHV.view(batch, new, heads, -1)

    def _attend_one(
        self,
        q_nope_11HN: torch.Tensor,
        q_pe_11HR: torch.Tensor,
        latent_1SC: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """`_attend_absorbed` for one query token: per-head W_UK / W_UV products as embedding
        bags over [H*N, L] and [H*L, V] tables (see `decode_tables.block_matvec`)."""
        heads = q_nope_11HN.shape[2]
        weight, fmt = self.kv_b_proj.weight, self.decode_format
        w_uk_HN_L = self._tables["uk"].get([weight], lambda: self._head_table(0), fmt)
        q_lat_HL = block_matvec(q_nope_11HN.reshape(heads, -1), w_uk_HN_L)
        q_HC = torch.cat([q_lat_HL, q_pe_11HR.reshape(heads, -1)], dim=-1)
        # In fp32: a reduced-precision mm goes to oneDNN, which builds (JITs) a new kernel for
        # every new cache length, about 2 ms each time, i.e. at every decode step.
        work = torch.promote_types(latent_1SC.dtype, torch.float32)
        latent_SC = latent_1SC[0].to(work)
        scores_HS = torch.mm(q_HC.to(work), latent_SC.t()).mul_(self.scale)
        mask_1S = None if mask is None else mask.reshape(1, -1)
        probs_HS = self._probabilities(scores_HS, mask_1S, head_axis=0)
        out_lat_HL = torch.mm(probs_HS, latent_SC[:, : self.kv_rank]).to(q_HC.dtype)
        w_uv_HL_V = self._tables["uv"].get([weight], lambda: self._head_table(1), fmt)
        return block_matvec(out_lat_HL, w_uv_HL_V).view(1, 1, heads, -1)

    def _head_table(self, part: int) -> torch.Tensor:
        """Per-head decode tables from `kv_b_proj`: part 0 = W_UK as [H*N, L] (rows of head h
        are its nope dims), part 1 = W_UV transposed as [H*L, V] (rows are latent dims)."""
        w_HXL = self.kv_b_proj.weight.detach().unflatten(0, (self.num_heads, -1))
        if part == 0:
            rows = w_HXL[:, : self.nope_dim].reshape(-1, self.kv_rank)
        else:
            rows = w_HXL[:, self.nope_dim :].transpose(1, 2).reshape(-1, self.v_dim)
        return encode_rows(rows, self.decode_format)

    def _absorbed_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_UK [H, N, L], W_UV [H, V, L]) from `kv_b_proj`, as contiguous per-head blocks.

        Without autograd, contiguous copies are cached (some bf16 batched matmuls copy strided
        operands on every call) and rebuilt whenever the weight tensor or its values change.
        """
        weight = self.kv_b_proj.weight
        w_HXL = weight.unflatten(0, (self.num_heads, -1))
        if torch.is_grad_enabled():
            return w_HXL.split([self.nope_dim, self.v_dim], dim=1)
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if self._absorbed_key != key:
            w_uk, w_uv = w_HXL.detach().split([self.nope_dim, self.v_dim], dim=1)
            with torch.inference_mode(False):
                self._absorbed = (w_uk.clone(), w_uv.clone())
            self._absorbed_key = key
        assert self._absorbed is not None
        return self._absorbed

    def _probabilities(
        self, scores: torch.Tensor, mask: torch.Tensor | None, *, head_axis: int
    ) -> torch.Tensor:
        """fp32 (fp64 for fp64 inputs) softmax over the last axis of masked scaled scores;
        records `max_logit_H`."""
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        if self.record_max_logit:
            others = tuple(axis for axis in range(scores.dim()) if axis != head_axis)
            self.max_logit_H = scores.detach().float().amax(dim=others)
        work = torch.promote_types(scores.dtype, torch.float32)
        return torch.softmax(scores.to(work), dim=-1)


def _per_row_matmul(a_BMX: torch.Tensor, b_BXY: torch.Tensor) -> torch.Tensor:
    """Batched a @ b; one batch row uses a 2-D mm, which takes the strided cache view as is
    (a bf16 bmm would copy it first)."""
    if a_BMX.shape[0] == 1:
        return torch.mm(a_BMX[0], b_BXY[0]).unsqueeze(0)
    return torch.bmm(a_BMX, b_BXY)


def _attention_mask(
    mask_BTS: torch.Tensor | None, new: int, total: int, device: torch.device
) -> torch.Tensor | None:
    """Boolean [B|1, 1, T, S] mask (True = may attend); None for square causal (SDPA's own)."""
    if mask_BTS is not None:
        return mask_BTS.unsqueeze(1)
    if new == total or new == 1:
        return None  # square causal: SDPA's own; a single new token sees every slot
    return _causal_mask(new, total, device)


def _causal_mask(new: int, total: int, device: torch.device) -> torch.Tensor:
    """[1, 1, T, S] causal mask with the T new tokens last among the S."""
    rows = torch.arange(new, device=device).unsqueeze(1) + (total - new)
    return (torch.arange(total, device=device) <= rows).view(1, 1, new, total)


def _max_logit(
    q_BHTQ: torch.Tensor,
    k_BHSQ: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
    chunk: int = 256,
) -> torch.Tensor:
    """Per-head max of the masked, scaled pre-softmax logits, in fp32, without a graph.

    QK-Clip needs only this statistic, so the attention itself stays on the fused SDPA kernel;
    the scores are rebuilt here a block of query rows at a time ([B, H, chunk, S] extra
    memory). Under a causal mask a block only scores the keys it can see, and only its
    diagonal tile needs masking.
    """
    new, total = q_BHTQ.shape[2], k_BHSQ.shape[2]
    best = torch.full((q_BHTQ.shape[1],), float("-inf"), device=q_BHTQ.device)
    with torch.no_grad():
        # fp32 operands: bf16 matmuls are slow on CPUs without AVX512-BF16
        q_all, k_BHQS = q_BHTQ.detach().float(), k_BHSQ.detach().float().transpose(-1, -2)
        for start in range(0, new, chunk):
            q = q_all[:, :, start : start + chunk]
            if mask is not None:
                scores = torch.matmul(q, k_BHQS) * scale
                scores = scores.masked_fill(~mask[..., start : start + chunk, :], float("-inf"))
            else:
                scores = _causal_block_scores(q, k_BHQS, start + total - new, scale)
            best = torch.maximum(best, scores.amax(dim=(0, 2, 3)))
    return best


def _causal_block_scores(
    q_BHCQ: torch.Tensor, k_BHQS: torch.Tensor, first_pos: int, scale: float
) -> torch.Tensor:
    """Scaled scores of query rows at positions first_pos.. against the keys they may see."""
    rows = q_BHCQ.shape[2]
    scores = torch.matmul(q_BHCQ, k_BHQS[..., : first_pos + rows]) * scale
    if rows > 1:
        tile = scores[..., first_pos:]
        hidden = torch.ones(rows, rows, dtype=torch.bool, device=tile.device).triu(1)
        tile.masked_fill_(hidden, float("-inf"))
    return scores


def _sdpa(
    q_BHTQ: torch.Tensor,
    k_BHSQ: torch.Tensor,
    v_BHSV: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """Fused attention. MLA's value heads are narrower than its query/key heads (K2.6: 128 vs
    192), which sends CPU SDPA to its unfused math path (~4x slower, [B, H, T, S] saved for
    backward); zero-padding the values to the key width keeps the flash kernel, and the pad
    columns of the output are dropped."""
    causal = mask is None and q_BHTQ.shape[2] > 1
    v_dim, qk_dim = v_BHSV.shape[-1], q_BHTQ.shape[-1]
    if v_dim < qk_dim:
        v_BHSV = F.pad(v_BHSV, (0, qk_dim - v_dim))
    out = F.scaled_dot_product_attention(
        q_BHTQ, k_BHSQ, v_BHSV, attn_mask=mask, is_causal=causal, scale=scale
    )
    return out[..., :v_dim]
