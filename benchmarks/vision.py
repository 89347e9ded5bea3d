"""Vision speed in one run, openk2 vs transformers 5.23 on the same random weights:
encoder throughput (patches/s) and time to first token of an image prompt.

    PYTHONPATH=src .venv/bin/python benchmarks/vision.py [--layers 4] [--hidden 384] [--heads 6]
        [--side 32] [--text 64] [--threads 1] [--repeats 3]

A random transformers `Kimi_K25ForConditionalGeneration` (SDPA attention, the debug text model)
is saved with `save_pretrained` and loaded by `openk2.model.vision.checkpoint.load_multimodal`.
The prompt is `--text` text tokens around one image of `--side` x `--side` patches
((side/2)^2 LM tokens). TTFT is the time from the request to its first sampled token:

- transformers: one `forward` over the whole prompt (pixels in, logits out) + argmax;
- openk2 direct: `KimiK25ForConditionalGeneration.forward`, the same;
- openk2 engine: `LLMEngine.add_request` (content hash) -> `step()`s until the first token,
  through the encoder cache, chunked prefill (512-token budget) and the paged latent cache,
  with packed GEMMs as `openk2 serve` runs it; new pixels per repeat and prefix caching off,
  so neither the encoder cache nor the prefix cache can hit.

Best of `--repeats` per side, the sides taking turns each repeat; ratios are openk2 /
transformers (< 1 is faster). The first tokens of all three must agree, and the direct logits'
max |diff| to transformers is printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "model"),
                str(ROOT / "tests" / "model" / "vision")]  # fmt: skip

from hf_vision_oracle import PAD_ID, saved_hf_model  # noqa: E402

from engine.fakes import ByteTokenizer  # noqa: E402
from openk2.engine.config import EngineConfig  # noqa: E402
from openk2.engine.llm_engine import LLMEngine  # noqa: E402
from openk2.engine.sampling_params import SamplingParams  # noqa: E402
from openk2.model.vision.checkpoint import load_multimodal  # noqa: E402
from openk2.model.vision.processor import MediaItem  # noqa: E402

Run = Callable[[], object]


def interleaved(runs: dict[str, Run], repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Best seconds and last result per side; one warm-up each, then the sides take turns
    every repeat, so a load change on a shared machine hits all of them alike."""
    outputs = {name: run() for name, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def image_prompt(side: int, text: int) -> tuple[list[int], MediaItem]:
    """Token ids (text, the image's pads, text) and the image's encoder input."""
    item = MediaItem(pixels=torch.randn(side * side, 3, 14, 14), grid_thw=(1, side, side),
                     num_tokens=(side // 2) ** 2)  # fmt: skip
    head = [10 + i % 200 for i in range(text // 2)]
    tail = [20 + i % 200 for i in range(text - text // 2)]
    return head + [PAD_ID] * item.num_tokens + tail, item


def engine_run(model: torch.nn.Module, ids: list[int], item: MediaItem, repeats: int) -> Run:
    # called 1 + repeats times by `interleaved`: `repeats` fresh images, then the real one
    """One request to first token on one engine as `openk2 serve` builds it (packed GEMMs on),
    prefix caching off and new pixels per call, so no cache can hit; the last call uses the
    benchmark's own pixels (its first token is checked against the other sides)."""
    config = EngineConfig(num_blocks=len(ids) // 16 + 4, enable_prefix_caching=False)
    engine = LLMEngine(model, ByteTokenizer(vocab_size=512), config)
    greedy = SamplingParams(temperature=0.0, max_tokens=1)
    fresh = [replace(item, pixels=torch.randn_like(item.pixels)) for _ in range(repeats)]
    queue = [*fresh, item]

    def first_token() -> int:
        engine.add_request(ids, greedy, media=[queue.pop(0)])
        while True:
            for out in engine.step():
                if out.token_ids:
                    return out.token_ids[0]

    return first_token


def encoder_throughput(hf: object, ours: object, args: argparse.Namespace) -> None:
    grids = [(1, args.side, args.side)] * 2
    pixels = torch.randn(2 * args.side**2, 3, 14, 14)
    best, out = interleaved({
        "hf": lambda: torch.cat(hf.get_image_features(  # type: ignore[attr-defined]
            pixels, torch.tensor(grids)).pooler_output),
        "ours": lambda: ours.media_embeddings(pixels, grids),  # type: ignore[attr-defined]
    }, args.repeats)  # fmt: skip
    patches = pixels.shape[0]
    print(f"encoder, 2 images of {args.side}x{args.side} patches: transformers "
          f"{patches / best['hf']:,.0f} patches/s, openk2 {patches / best['ours']:,.0f} "
          f"patches/s, time ratio {best['ours'] / best['hf']:.2f}, max |diff| "
          f"{(out['ours'] - out['hf']).abs().max().item():.1e}")  # type: ignore[operator]  # fmt: skip


def time_to_first_token(hf: object, ours: object, args: argparse.Namespace) -> None:
    ids, item = image_prompt(args.side, args.text)
    ids_BT, grids = torch.tensor([ids]), [item.grid_thw]
    best, out = interleaved({
        "hf": lambda: hf(input_ids=ids_BT, pixel_values=item.pixels,  # type: ignore[operator]
                         image_grid_thw=torch.tensor(grids)).logits[0, -1],
        "direct": lambda: ours(ids_BT, item.pixels, grids, logits_to_keep=1)[0, -1],  # type: ignore[operator]
        "engine": engine_run(ours, ids, item, args.repeats),  # type: ignore[arg-type]
    }, args.repeats)  # fmt: skip
    firsts = {int(out["hf"].argmax()), int(out["direct"].argmax()), out["engine"]}  # type: ignore[attr-defined]
    hf_s = best["hf"]
    print(f"TTFT, {len(ids)}-token prompt ({item.num_tokens} image tokens): transformers "
          f"{hf_s * 1e3:.1f} ms, openk2 direct {best['direct'] * 1e3:.1f} ms "
          f"(ratio {best['direct'] / hf_s:.2f}), openk2 engine {best['engine'] * 1e3:.1f} ms "
          f"(ratio {best['engine'] / hf_s:.2f}); first tokens agree: {len(firsts) == 1}; "
          f"max |diff| logits {(out['direct'] - out['hf']).abs().max().item():.1e}")  # type: ignore[operator]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("layers", 4), ("hidden", 384), ("heads", 6), ("side", 32),
                          ("text", 64), ("threads", 1), ("repeats", 3)]:  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vision = {"num_hidden_layers": args.layers, "hidden_size": args.hidden,
              "num_attention_heads": args.heads, "intermediate_size": 4 * args.hidden,
              "pos_emb_height": 16, "pos_emb_width": 16}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        hf = saved_hf_model(Path(tmp), vision=vision, attn="sdpa")
        ours = load_multimodal(tmp)
    print(f"{args.layers} vision layers, d={args.hidden}, debug text model, fp32, "
          f"{args.threads} thread(s), best of {args.repeats}")  # fmt: skip
    with torch.inference_mode():
        encoder_throughput(hf, ours, args)
        time_to_first_token(hf, ours, args)


if __name__ == "__main__":
    main()
