"""Accelerators and their memory, and the `8xH200` notation for a set of them.

Memory is the vendor's nominal figure in decimal GB (what datasheets and recipes quote:
"8x141 GB"); what the runtime cannot use is left to the engine's memory-utilisation fraction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GB = 10**9


@dataclass(frozen=True, slots=True)
class Gpu:
    """One accelerator model."""

    name: str
    memory_gb: float
    vendor: str
    """"nvidia" or "amd": AMD needs the AITER MLA head rule and its own MoE kernels."""
    source: str

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * GB)


_NV = "NVIDIA datasheet"
_AMD = "AMD Instinct datasheet"
GPUS: dict[str, Gpu] = {g.name.lower(): g for g in (
    Gpu(name="H200", memory_gb=141, vendor="nvidia", source=_NV + " (H200 SXM, HBM3e)"),
    Gpu(name="H100", memory_gb=80, vendor="nvidia", source=_NV + " (H100 SXM, HBM3)"),
    Gpu(name="H800", memory_gb=80, vendor="nvidia", source=_NV + " (H800 SXM)"),
    Gpu(name="H20", memory_gb=96, vendor="nvidia", source=_NV + " (H20, HBM3)"),
    Gpu(name="B200", memory_gb=180, vendor="nvidia", source=_NV + " (HGX B200, per GPU)"),
    Gpu(name="B300", memory_gb=288, vendor="nvidia", source=_NV + " (HGX B300, per GPU)"),
    Gpu(name="GB200", memory_gb=186, vendor="nvidia", source=_NV + " (GB200 NVL72, per GPU)"),
    Gpu(name="GB300", memory_gb=288, vendor="nvidia", source=_NV + " (GB300 NVL72, per GPU)"),
    Gpu(name="A100", memory_gb=80, vendor="nvidia", source=_NV + " (A100 80GB SXM)"),
    Gpu(name="A100-40GB", memory_gb=40, vendor="nvidia", source=_NV + " (A100 40GB)"),
    Gpu(name="L20", memory_gb=48, vendor="nvidia", source=_NV + " (L20, GDDR6)"),
    Gpu(name="L40S", memory_gb=48, vendor="nvidia", source=_NV + " (L40S, GDDR6)"),
    Gpu(name="RTX4090", memory_gb=24, vendor="nvidia", source=_NV + " (GeForce RTX 4090)"),
    Gpu(name="MI300X", memory_gb=192, vendor="amd", source=_AMD + " (MI300X, HBM3)"),
    Gpu(name="MI325X", memory_gb=256, vendor="amd", source=_AMD + " (MI325X, HBM3e)"),
    Gpu(name="MI350X", memory_gb=288, vendor="amd", source=_AMD + " (MI350X, HBM3e)"),
    Gpu(name="MI355X", memory_gb=288, vendor="amd", source=_AMD + " (MI355X, HBM3e)"),
)}


@dataclass(frozen=True, slots=True)
class GpuSet:
    """`count` identical GPUs (on one or more nodes)."""

    count: int
    gpu: Gpu

    def __str__(self) -> str:
        return f"{self.count}x{self.gpu.name}"


_SPEC = re.compile(r"^\s*(\d+)\s*[xX*]\s*([A-Za-z0-9-]+)\s*$")


def parse_gpus(text: str) -> GpuSet:
    """Parse `8xH200` (count x name, case-insensitive); unknown names list the known ones."""
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"--gpus must look like 8xH200, got {text!r}")
    count, name = int(match[1]), match[2].lower()
    if count < 1:
        raise ValueError(f"--gpus needs at least one GPU, got {text!r}")
    if name not in GPUS:
        known = ", ".join(g.name for g in GPUS.values())
        raise ValueError(f"unknown GPU {match[2]!r}; known: {known}")
    return GpuSet(count=count, gpu=GPUS[name])
