"""Inference GEMMs on weights packed once for oneDNN: the CPU fast path of batched decode.

Why: torch's CPU `F.linear` runs on MKL's sgemm, which re-lays out (packs) the weight operand on
every call and, on the AMD EPYC build machines, ran the small-M GEMMs of batched decode (M = 4-32
rows against [256-8192, 768] weights) 1.3-2.3x slower than oneDNN does on a weight reordered
once into its blocked layout (`benchmarks/README.md`, serve section); it also comes closer
to the memory bandwidth when few rows share a weight. Packing also lets
projections of the same input share one GEMM: an MLP's gate and up, MLA's q_a and kv_a.

Opt-in (`enable_packed_gemms(model)`, the engine does it): a packed weight is a second copy of
the weight, so memory for the packed modules doubles. Modules keep their `nn.Linear`
parameters (state dict, training, autograd untouched) and take the packed path only without
autograd, on CPU, in a dtype oneDNN packs (fp32; bf16 where the CPU has bf16 dot products).
A pack is a `DerivedTable` (`decode_tables.py`): rebuilt whenever a source weight changes
(storage, version, dtype or device), like the single-token decode tables. Those cover one row
(a GEMV); packs cover two rows or more, so the two never compete for the same call. A module
with hooks (LoRA) or wrapped projections is called as a module instead, as for the tables.
Results equal `F.linear` up to fp32 summation order.

Shape legend: N rows, D input features, O output features (summed over the fused weights).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import torch
from torch import nn

from openk2.model.layers.decode_tables import DerivedTable

FastPath = Literal["table", "packed"]
"""How an inference forward runs its projections on derived weight copies: one token on the
decode tables (`decode_tables.py`), several rows on packed GEMMs (here)."""
MIN_ROWS = 2
"""Fewest rows that take the packed path: one row is a GEMV, which MKL runs as fast."""
TILE_ROWS = 256
"""Most rows of one oneDNN call. oneDNN (through ideep) keeps a primitive and its buffers for
every input shape it meets, never freed below its 1,024-entry cache (about 2 MiB each at 2,048
rows), so every new row count (each MoE expert's share of each prefill chunk) kept RSS growing:
~5 KB per prompt token through a 128K prefill. Calls run on tiles of this many rows, the last one
padded to a power of two, so one weight shape meets at most 9 row counts."""
_ENABLE_ATTR = "packed_gemms"
"""Boolean attribute of every module that can take the packed path (off by default); such a
module also has `packed_gemm_weights() -> [(PackedGemm, weights), ...]`."""


@functools.cache
def packed_gemms_available() -> bool:
    """Whether this torch build can pack weights for oneDNN and run GEMMs on them."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 3), None)
        out = _linear_op()(torch.ones(1, 3), packed, None, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.equal(out, torch.full((1, 2), 3.0)))


@functools.cache
def _linear_op() -> Any:
    """oneDNN's linear on a packed weight, as its `default` overload: calling the overload
    packet instead resolves the overload on every call (~15 us, a third of a small GEMM)."""
    return torch.ops.mkldnn._linear_pointwise.default


@functools.cache
def _packable_dtypes() -> frozenset[torch.dtype]:
    dtypes = {torch.float32}
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        dtypes.add(torch.bfloat16)
    return frozenset(dtypes)


def use_packed(enabled: bool, x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a module with `packed_gemms = enabled` should take the packed path for x.

    (`enable_packed_gemms` only sets the flag where packing works, so it is not checked here.)
    """
    if not enabled or torch.is_grad_enabled():
        return False
    return (
        x.numel() >= MIN_ROWS * x.shape[-1]
        and x.dtype == weight.dtype
        and x.device.type == "cpu"
        and x.dtype in _packable_dtypes()
    )


def enable_packed_gemms(model: nn.Module, enabled: bool = True) -> int:
    """Switch every module of `model` that supports it to packed GEMMs; returns how many.

    Packs every weight the modules can pack right away (CPU weights in a packable dtype), so a
    server pays for packing at startup rather than on its first requests; a weight changed
    later is repacked on its next use. Returns 0 (and changes nothing) when the torch build
    cannot pack. `enabled=False` switches back and frees the packs.
    """
    if enabled and not packed_gemms_available():
        return 0
    switched = 0
    for module in model.modules():
        if not hasattr(module, _ENABLE_ATTR):
            continue
        setattr(module, _ENABLE_ATTR, enabled)
        switched += 1
        for gemm, weights in module.packed_gemm_weights():  # type: ignore[operator]
            if not enabled:
                gemm.clear()
            elif all(w.device.type == "cpu" and w.dtype in _packable_dtypes() for w in weights):
                gemm.prepare(*weights)
    return switched


class PackedGemm:
    """y = x @ cat(weights).T on one packed copy of the weights, repacked when any changes.

    The packed copy is a `DerivedTable` (the same rebuild rule as the single-token decode
    tables), and holds no parameters: the owning module passes its weights at each call, so
    state dicts, `.to()` and deep copies of the module are unaffected (a copy starts empty).
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table = DerivedTable()

    def __call__(self, x_ND: torch.Tensor, *weights_OD: torch.Tensor) -> torch.Tensor:
        """[N, D] @ cat(weights [O_i, D]).T -> [N, sum O_i] (input of any leading shape)."""
        packed_OD = self.prepare(*weights_OD)
        x_2d = x_ND if x_ND.dim() == 2 else x_ND.reshape(-1, x_ND.shape[-1])
        out = _tiled_linear(x_2d, packed_OD)
        return out if x_ND.dim() == 2 else out.view(*x_ND.shape[:-1], out.shape[-1])

    def prepare(self, *weights_OD: torch.Tensor) -> torch.Tensor:
        """The packed copy of these weights, packing them if they changed since last time."""
        return self._table.get(weights_OD, lambda: _pack(weights_OD))

    def clear(self) -> None:
        """Drop the packed copy (rebuilt on the next call)."""
        self._table.clear()

    @property
    def packed(self) -> torch.Tensor | None:
        """The packed copy held now (None before the first use or after `clear`)."""
        return self._table.cached

    def __deepcopy__(self, memo: dict[int, Any]) -> PackedGemm:
        return PackedGemm()


def row_tiles(rows: int) -> list[tuple[int, int, int]]:
    """(start, stop, rows padded) of each call for `rows` input rows (see `TILE_ROWS`)."""
    full = rows // TILE_ROWS
    tiles = [(i * TILE_ROWS, (i + 1) * TILE_ROWS, TILE_ROWS) for i in range(full)]
    done = full * TILE_ROWS
    if done < rows:
        tiles.append((done, rows, 1 << (rows - done - 1).bit_length()))
    return tiles


def _tiled_linear(x_ND: torch.Tensor, packed_OD: torch.Tensor) -> torch.Tensor:
    """x @ W.T in calls of the bounded set of row counts `row_tiles` gives."""
    parts = []
    for start, stop, padded in row_tiles(x_ND.shape[0]):
        tile = x_ND[start:stop]
        if padded != stop - start:
            tile = torch.cat([tile, tile.new_zeros(padded - (stop - start), tile.shape[1])])
        parts.append(_linear_op()(tile, packed_OD, None, "none", [], "")[: stop - start])
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _pack(weights_OD: tuple[torch.Tensor, ...]) -> torch.Tensor:
    joined = weights_OD[0] if len(weights_OD) == 1 else torch.cat(weights_OD)
    return torch.ops.mkldnn._reorder_linear_weight(joined.detach().contiguous(), None)
