"""Inference-only weight tables for single-token decode, rebuilt whenever their sources change.

Batch-1 decode is one matrix-vector product per weight matrix, so it is bound by how fast the
weights stream from memory and by how many kernel calls a token costs. The tables here are
derived copies of parameters laid out for that case:

- transposed [in, out] (`linear_table`): a product then reads contiguous rows of the weight,
  scaled by the input's entries, which streams better than dot products of [out, in] rows
  for these small matrices (and lets several experts share one call, see `moe.py`);
- fused: matrices that read the same input are concatenated along `out`, one call for all.

Each table remembers the (storage address, version counter, dtype, device) of every source
tensor; an in-place update (optimizer step, `load_state_dict`, `copy_`) bumps the version and a
`.to()` moves the storage, so the next use rebuilds it. Training (autograd on) never uses them.
They cost memory: one more copy of the weights they cover.

Formats (`DecodeFormat`, chosen per model with `KimiK2ForCausalLM.set_decode_format`):
"native" keeps the weights' dtype (exact up to summation order); "int8" stores every table
row as 8-bit codes with its own fp32 scale and offset (fbgemm's byte-rowwise embedding-bag
layout, [rows, O + 8] uint8), a quarter of fp32's bytes per token for about 0.7% relative
error per product. Activations stay in the model dtype; the int8 kernel accumulates in fp32.

Shape legend: I input width, O output width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Key = tuple[object, ...]
DecodeFormat = Literal["native", "int8"]
DECODE_FORMATS: tuple[DecodeFormat, ...] = ("native", "int8")


def source_key(sources: Sequence[torch.Tensor]) -> Key:
    """What identifies the current values of `sources` (cheap: no data is read)."""
    return tuple([(t.data_ptr(), _version(t), t.dtype, t.device) for t in sources])


def _version(tensor: torch.Tensor) -> int:
    """The in-place update counter; -1 for inference tensors, which keep none (and which
    cannot be updated in place outside inference mode anyway)."""
    try:
        return tensor._version
    except RuntimeError:
        return -1


class DerivedTable:
    """One tensor computed from parameters; `get` rebuilds it when any source has changed."""

    __slots__ = ("_key", "_value")

    def __init__(self) -> None:
        self._key: Key | None = None
        self._value: torch.Tensor | None = None

    def get(
        self,
        sources: Sequence[torch.Tensor],
        build: Callable[[], torch.Tensor],
        fmt: DecodeFormat = "native",
    ) -> torch.Tensor:
        """The table for the current values of `sources` in format `fmt` (built if stale)."""
        key = (fmt, *source_key(sources))
        if key != self._key or self._value is None:
            self._value = None  # free the stale copy before building the new one
            with torch.inference_mode(False), torch.no_grad():
                self._value = build()
            self._key = key
        return self._value

    def clear(self) -> None:
        """Drop the cached copy (it is rebuilt on the next use)."""
        self._key, self._value = None, None

    @property
    def cached(self) -> torch.Tensor | None:
        """The copy held now, stale or not (None before the first use or after `clear`)."""
        return self._value

    def __deepcopy__(self, memo: dict[int, object]) -> DerivedTable:
        """A copy starts empty: its sources are new tensors, so the old table would be stale."""
        return DerivedTable()


def plain_weight(module: nn.Module) -> torch.Tensor | None:
    """The weight of a bias-free `nn.Linear` without hooks, else None.

    Reading such a weight directly is exact; anything else (a LoRA forward hook, a quantized or
    parallel replacement) must be called as a module, so the fast paths fall back to the
    reference code for it. Runs per decode step: it reads the module's dicts directly rather
    than through `nn.Module.__getattr__`.
    """
    if type(module) is not nn.Linear or module._forward_hooks or module._forward_pre_hooks:
        return None
    params = module._parameters
    return params["weight"] if params["bias"] is None else None


def is_plain_linear(module: nn.Module) -> bool:
    """Whether `plain_weight` finds a weight to read directly."""
    return plain_weight(module) is not None


def swiglu_weights(mlp: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(gate, up, down) weights of an un-hooked SwiGLU module whose projections are plain."""
    if mlp._forward_hooks or mlp._forward_pre_hooks:
        return None
    modules = mlp._modules
    gate, up, down = (plain_weight(modules[n]) for n in ("gate_proj", "up_proj", "down_proj"))
    if gate is None or up is None or down is None:
        return None
    return gate, up, down


def no_grad_single_token(x: torch.Tensor) -> bool:
    """Whether `x` [..., D] holds one token and no gradient is wanted (the decode case)."""
    return x.numel() == x.shape[-1] and not torch.is_grad_enabled()


def linear_table(weights: Sequence[torch.Tensor], fmt: DecodeFormat = "native") -> torch.Tensor:
    """[I, sum of O] transposed concatenation of [O_i, I] weights (rows = input features)."""
    fused = weights[0] if len(weights) == 1 else torch.cat(list(weights), dim=0)
    return encode_rows(fused.detach().t(), fmt)


def table_linear(
    table: DerivedTable, x: torch.Tensor, weights: Sequence[torch.Tensor], fmt: DecodeFormat
) -> torch.Tensor:
    """One token x [..., I] times the concatenated `weights` [O_i, I] -> [..., sum of O_i], on
    `table` (the transposed copy, built or rebuilt as needed)."""
    table_IO = table.get(weights, lambda: linear_table(weights, fmt), fmt)
    return matvec(x.reshape(1, -1), table_IO).view(*x.shape[:-1], -1)


def encode_rows(rows_RO: torch.Tensor, fmt: DecodeFormat) -> torch.Tensor:
    """A table of rows in `fmt`: contiguous as is, or int8 codes + per-row fp32 scale/offset."""
    if fmt == "int8":
        return torch.ops.quantized.embedding_bag_byte_prepack(rows_RO.float().contiguous())
    return rows_RO.contiguous()


def table_width(table: torch.Tensor) -> int:
    """Output width O of a table in either format (int8 rows end in 8 bytes of scale/offset)."""
    return table.shape[1] - 8 if table.dtype == torch.uint8 else table.shape[1]


def bag(
    table: torch.Tensor,
    indices: torch.Tensor,
    offsets: torch.Tensor,
    weights: torch.Tensor,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """Sum embedding bag with per-row weights over a table in either format, in `out_dtype`."""
    if table.dtype == torch.uint8:
        out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            table, indices, offsets, False, 0, False, weights.float(), None, False
        )
        return out if out_dtype == torch.float32 else out.to(out_dtype)
    return F.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=weights)


_BAGS: dict[tuple[int, int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def bag_index(bags: int, rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices arange(bags * rows), offsets [0, rows, 2 rows, ...]): `bags` consecutive bags of
    `rows` table rows each (memoised)."""
    found = _BAGS.get((bags, rows, device))
    if found is None:
        with torch.inference_mode(False):
            found = (
                torch.arange(bags * rows, device=device),
                torch.arange(0, bags * rows, rows, device=device),
            )
        _BAGS[(bags, rows, device)] = found
    return found


def block_matvec(x_GI: torch.Tensor, table_GI_O: torch.Tensor) -> torch.Tensor:
    """[G, O]: row g of x times block g ([I, O], rows g*I...) of the table, in one bag call.

    Used for per-head products (MLA's absorbed W_UK / W_UV): a sum embedding bag reads each
    block's rows in place, scaled by x's entries, where a batched matmul of single rows takes
    a slower path (and bf16 `bmm` a much slower one).
    """
    groups, width = x_GI.shape
    indices, offsets = bag_index(groups, width, x_GI.device)
    return bag(table_GI_O, indices, offsets, x_GI.reshape(-1), x_GI.dtype)


def matvec(x_1I: torch.Tensor, table_IO: torch.Tensor) -> torch.Tensor:
    """x [1, I] times a `linear_table` [I, O] -> [1, O], in x's dtype.

    bf16/fp16 and int8 tables go through a sum embedding bag (the rows of the table weighted
    by x's entries): its CPU kernel streams reduced-precision rows at about twice the rate of
    bf16 `mm`. fp32 uses `mm`, whose row-streaming (non-transposed) GEMV is the faster MKL
    variant. An embedding bag parallelises over bags only, so with several threads the rows
    are split into one bag per thread and the partial sums added.
    """
    if table_IO.dtype == torch.float32 or table_IO.device.type != "cpu":
        return torch.mm(x_1I, table_IO)
    parts = split_count(x_1I.shape[1])
    if parts == 1:
        return block_matvec(x_1I, table_IO)
    return block_matvec(x_1I.view(parts, -1), table_IO).sum(0, keepdim=True)


def split_count(rows: int) -> int:
    """Bags to split one bag of `rows` rows into: one per thread when that divides evenly."""
    threads = torch.get_num_threads()
    return threads if threads > 1 and rows % threads == 0 else 1
