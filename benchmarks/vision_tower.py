"""Image encoding speed: openk2's MoonViT-3D + projector vs transformers 5.23 on the same weights.

    .venv/bin/python benchmarks/vision_tower.py [--layers 4] [--hidden 384] [--heads 6]
        [--side 32] [--images 2] [--threads 1] [--repeats 3]

A random transformers `Kimi_K25ForConditionalGeneration` (SDPA attention) is saved with
`save_pretrained` and loaded by `openk2.model.vision.checkpoint.load_multimodal`; both encode the
same `--images` images of `--side` x `--side` patches (packed in one call) in fp32. Reported:
best-of-`--repeats` seconds per side, their ratio (openk2 / transformers; < 1 is faster), and
the max |difference| of the outputs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "model"), str(ROOT / "tests" / "model" / "vision")]

from hf_vision_oracle import saved_hf_model  # noqa: E402

from openk2.model.vision.checkpoint import load_multimodal  # noqa: E402


def _best(run: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    out = run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("layers", 4), ("hidden", 384), ("heads", 6), ("side", 32),
                          ("images", 2), ("threads", 1), ("repeats", 3)]:  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vision = {"num_hidden_layers": args.layers, "hidden_size": args.hidden,
              "num_attention_heads": args.heads, "intermediate_size": 4 * args.hidden,
              "pos_emb_height": 16, "pos_emb_width": 16}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        hf = saved_hf_model(Path(tmp), vision=vision, attn="sdpa")
        ours = load_multimodal(tmp)
    grids = [(1, args.side, args.side)] * args.images
    pixels = torch.randn(args.images * args.side**2, 3, 14, 14)
    with torch.inference_mode():
        hf_s, expected = _best(
            lambda: torch.cat(hf.get_image_features(pixels, torch.tensor(grids)).pooler_output),
            args.repeats,
        )
        ours_s, actual = _best(lambda: ours.media_embeddings(pixels, grids), args.repeats)
    print(f"{args.images} images of {args.side}x{args.side} patches, {args.layers} layers, "
          f"d={args.hidden}, {args.threads} thread(s)")  # fmt: skip
    print(f"transformers {hf_s:.3f} s, openk2 {ours_s:.3f} s, ratio {ours_s / hf_s:.2f}, "
          f"max |diff| {(actual - expected).abs().max().item():.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
