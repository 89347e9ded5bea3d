"""One MoE layer's experts as two embedding-bag tables: all of a token's experts in two calls.

Shape legend: E routed experts, S shared blocks, X = E + S blocks, D hidden, I expert width,
n blocks a token uses (its K routed experts + the S shared blocks).

A SwiGLU expert's matrix-vector products are sums of weight rows scaled by input entries once
its matrices are stored transposed: gate/up(x) = sum_j x[j] * [gate; up]^T[j] and
down(h) = sum_i h[i] * down^T[i]. A sum embedding bag computes exactly such weighted row sums,
one bag per output row, reading the rows in place. So with

    gate_up_XD_F [X * D, 2I]   block b = [gate_b; up_b]^T
    down_XI_D    [X * I, D]    block b = down_b^T

a token's n experts take one bag call for every gate/up product (n bags of D rows) and one for
the routing-weighted sum of every down product (one bag of n * I rows), instead of 3n matrix
calls, and no expert weight is gathered or copied per token. A shared expert of width S * I is
S blocks of width I (SwiGLU acts elementwise on the intermediate axis, so its output is the
sum of its blocks' outputs), each with routing weight 1.

Blocks are (re)built lazily when a token first uses them or after their source weights change
(see `decode_tables.source_key`), so a model that only ever decodes a few experts per layer
pays for the copies it uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from openk2.model.layers.decode_tables import (
    DecodeFormat,
    Key,
    bag,
    encode_rows,
    source_key,
    split_count,
)


class ExpertTables:
    """Lazily filled transposed copies of one MoE layer's routed and shared expert weights."""

    def __init__(self, num_routed: int, num_shared_blocks: int) -> None:
        self.num_routed = num_routed
        self.blocks = num_routed + num_shared_blocks
        self.shared_ids = list(range(num_routed, self.blocks))
        self.gate_up_XD_F: torch.Tensor | None = None
        self.down_XI_D: torch.Tensor | None = None
        self._keys: list[Key | None] = [None] * self.blocks
        self._fmt: DecodeFormat = "native"
        self._index: dict[str, torch.Tensor] = {}

    def experts_forward(
        self, x_1D: torch.Tensor, ids: list[int], weights: list[float]
    ) -> torch.Tensor:
        """sum_b weights[b] * expert_b(x) + sum of the shared blocks, [1, D], x's dtype.

        `ids` are routed expert ids (< E); the shared blocks are appended here.
        """
        assert self.gate_up_XD_F is not None and self.down_XI_D is not None
        blocks = torch.tensor(ids + self.shared_ids, device=x_1D.device)
        scale_n1 = torch.tensor(  # fp32, fp64 for fp64 inputs (as the batch path)
            weights + [1.0] * len(self.shared_ids),
            dtype=torch.promote_types(x_1D.dtype, torch.float32),
            device=x_1D.device,
        ).unsqueeze(1)
        n, dim = blocks.shape[0], x_1D.shape[-1]
        gate_up_nF = bag(
            self.gate_up_XD_F,
            self._index["gate_up"][blocks].view(-1),
            self._offsets(n, dim, x_1D.device),
            x_1D.expand(n, dim).reshape(-1),
            x_1D.dtype,
        )
        gate_nI, up_nI = gate_up_nF.chunk(2, dim=-1)
        hidden_nI = F.silu(gate_nI).mul_(up_nI).mul_(scale_n1)
        parts = split_count(hidden_nI.numel())  # one bag per thread, partial sums added
        out_PD = bag(
            self.down_XI_D,
            self._index["down"][blocks].view(-1),
            self._offsets(parts, hidden_nI.numel() // parts, x_1D.device),
            hidden_nI.view(-1),
            x_1D.dtype,
        )
        return out_PD if parts == 1 else out_PD.sum(0, keepdim=True)

    def refresh(
        self, weights: list[tuple[torch.Tensor, ...]], ids: list[int], fmt: DecodeFormat
    ) -> None:
        """Make sure the blocks of `ids` and the shared blocks hold the current weights in `fmt`.

        `weights` holds the (gate, up, down) weights of each routed expert in `ids`, then of
        the shared expert when there is one.
        """
        self._allocate(weights[0][0], fmt)
        for expert_id, sources in zip(ids, weights, strict=False):
            self._refresh_block(expert_id, sources, 0)
        if self.shared_ids:
            for part, block in enumerate(self.shared_ids):
                self._refresh_block(block, weights[-1], part)

    def _allocate(self, weight: torch.Tensor, fmt: DecodeFormat) -> None:
        """(Re)allocate the tables when missing or when the format, dtype or device changed."""
        width, dim = weight.shape
        table, pad = self.gate_up_XD_F, 8 if fmt == "int8" else 0
        dtype = torch.uint8 if fmt == "int8" else weight.dtype
        if table is not None and table.dtype == dtype and table.device == weight.device:
            return
        self.gate_up_XD_F = self.down_XI_D = None
        with torch.inference_mode(False):
            self.gate_up_XD_F = weight.new_empty(self.blocks * dim, 2 * width + pad, dtype=dtype)
            self.down_XI_D = weight.new_empty(self.blocks * width, dim + pad, dtype=dtype)
            blocks = torch.arange(self.blocks, device=weight.device).unsqueeze(1)
            self._index = {
                "gate_up": blocks * dim + torch.arange(dim, device=weight.device),
                "down": blocks * width + torch.arange(width, device=weight.device),
            }
        self._fmt = fmt
        self._keys = [None] * self.blocks

    def _refresh_block(self, block: int, sources: tuple[torch.Tensor, ...], part: int) -> None:
        """Write block `block` from rows [part*I, (part+1)*I) of (gate, up, down) if stale."""
        assert self.gate_up_XD_F is not None and self.down_XI_D is not None
        key = (part, *source_key(sources))
        if self._keys[block] == key:
            return
        dim = self.gate_up_XD_F.shape[0] // self.blocks
        width = self.down_XI_D.shape[0] // self.blocks
        rows = slice(part * width, (part + 1) * width)
        gate, up, down = (w.detach() for w in sources)
        with torch.inference_mode(False), torch.no_grad():
            gate_up_DF = torch.cat([gate[rows], up[rows]]).t()
            self.gate_up_XD_F[block * dim : (block + 1) * dim] = encode_rows(gate_up_DF, self._fmt)
            down_ID = encode_rows(down[:, rows].t(), self._fmt)
            self.down_XI_D[block * width : (block + 1) * width] = down_ID
        self._keys[block] = key

    def _offsets(self, bags: int, step: int, device: torch.device) -> torch.Tensor:
        """Bag start offsets [0, step, 2 step, ...] (memoised per bag count and step)."""
        name = f"offsets_{bags}_{step}"
        if name not in self._index:
            with torch.inference_mode(False):
                self._index[name] = torch.arange(bags, device=device) * step
        return self._index[name]
