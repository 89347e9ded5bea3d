"""How much memory the latent cache may take, and what limits the context length.

Without an explicit budget, the cache gets room for one full-length request
(`max_model_len` tokens) but never more than `CACHE_MEMORY_FRACTION` of the memory still free on
the cache's device, so a long `max_model_len` on a small machine lowers the served context
(requests beyond it get a 400 that names the cache as the limit) instead of running out of
memory mid-prefill.
"""

from __future__ import annotations

import os

import torch

CACHE_MEMORY_FRACTION = 0.5
"""Share of the free memory the cache may take by default; the rest is for weights, activations
and the attention workspace."""


def free_memory_bytes(device: torch.device) -> int:
    """Bytes still available on `device` (MemAvailable on CPU, free CUDA memory on a GPU)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def default_cache_bytes(max_len: int, bytes_per_token: int, device: torch.device) -> int:
    """Room for `max_len` tokens, capped at the free-memory share."""
    wanted = max_len * bytes_per_token
    return max(bytes_per_token, min(wanted, int(free_memory_bytes(device) * CACHE_MEMORY_FRACTION)))


def context_limit(model_max: int, configured: int | None, cache_tokens: int) -> tuple[int, str]:
    """(longest prompt + output served, what sets it), for the 400 a longer request gets."""
    limits = [(model_max, "the model's max_position_embeddings")]
    if configured is not None:
        limits.append((configured, "the server's --max-model-len"))
    limits.append((cache_tokens, f"the memory of the latent cache ({cache_tokens} token slots)"))
    return min(limits, key=lambda item: item[0])
