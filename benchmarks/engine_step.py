"""Batched decode step of the engine, in process: time per step at 1, 8, 32 running sequences.

Builds the `small` preset (seeded random weights, bundled tokenizer), fills the engine with N
chat prompts like `benchmarks/serve.py` sends (instant mode, K2.6 sampling: temperature 0.6,
top-p 0.95), prefills them, then times decode steps. Packed oneDNN GEMMs on and off alternate
step by step in the same engine, so both see the same load and the same context lengths.
Reported per configuration: median engine-thread CPU ms per step (robust to other jobs taking
the core), median wall ms, and tokens per CPU-second.

    .venv/bin/python benchmarks/engine_step.py [--rows 1,8,32] [--steps 24] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.sampling_params import SamplingParams
from openk2.model import build_model, get_preset
from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.chat import encode_chat


def build_engine(model: torch.nn.Module, tokenizer: object, rows: int) -> LLMEngine:
    """An engine with `rows` prefilled sequences that will not finish during the run."""
    engine = LLMEngine(model, tokenizer, EngineConfig(max_num_seqs=64, max_model_len=2048))
    params = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=1024, ignore_eos=True)
    for i in range(rows):
        message = {"role": "user", "content": f"Stream {i}: tell me a long story."}
        prompt = encode_chat(tokenizer, [message], None, thinking=False, preserve_thinking=False)
        engine.add_request(prompt, params)
    while engine.scheduler.waiting or any(
        s.num_output_tokens == 0 for s in engine.scheduler.running
    ):
        engine.step()
    return engine


def set_packed(model: torch.nn.Module, on: bool) -> None:
    """Flip the packed path without dropping the packs (both stay warm)."""
    for module in model.modules():
        if hasattr(module, "packed_gemms"):
            module.packed_gemms = on


def time_steps(
    model: torch.nn.Module, engine: LLMEngine, steps: int
) -> dict[str, tuple[list[float], list[float]]]:
    """(CPU seconds, wall seconds) per step for each configuration, interleaved."""
    runs: dict[str, tuple[list[float], list[float]]] = {"packed": ([], []), "torch": ([], [])}
    for _ in range(steps):
        for name, (cpu, wall) in runs.items():
            set_packed(model, name == "packed")
            c, w = time.thread_time(), time.perf_counter()
            engine.step()
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
    set_packed(model, True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,8,32", help="comma-separated running sequences")
    parser.add_argument("--steps", type=int, default=24, help="timed steps per configuration")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = default_tokenizer()
    config = dataclasses.replace(
        get_preset("small"),
        vocab_size=tokenizer.vocab_size,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    model = build_model(config, dtype=torch.float32, seed=0).eval()
    print("| rows | GEMMs | CPU ms/step (median) | wall ms/step (median) | tok per CPU-s |")
    print("|---|---|---|---|---|")
    for rows in (int(x) for x in args.rows.split(",")):
        engine = build_engine(model, tokenizer, rows)
        for name, (cpu, wall) in time_steps(model, engine, args.steps).items():
            cpu_ms, wall_ms = statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3
            print(f"| {rows} | {name} | {cpu_ms:.1f} | {wall_ms:.1f} | {rows / cpu_ms * 1e3:.0f} |")


if __name__ == "__main__":
    main()
