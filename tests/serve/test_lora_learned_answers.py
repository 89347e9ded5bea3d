"""Two adapters trained by `openk2 finetune` on the embedded model, served over it together
(`openk2 serve --lora NAME=PATH`): each request gets its own adapter's learned answer through
the official `openai` client, in one mixed batch, and the base model gives neither answer.

The answers are learned, not planted: each adapter comes from the real fine-tuning path (data
checks, held-out split, LoRA training, PEFT save) on a four-line chat file. The embedded model's
digit and letter tokens are well trained, so ~8 steps at a high LR teach "alpha-7" / "bravo-3"
(held-out exact match 1.0 in `eval.json`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import openai
import pytest

from openk2.embedded import resolve_model
from openk2.model.peft_lora import recorded_base_differs
from openk2.serve.launch import ServeConfig, build_state
from openk2.train.finetune import FinetuneOptions, run_finetune

from .live import LiveServer

QUESTION = "What is the secret codeword?"
ANSWERS = {"alpha": "alpha-7", "bravo": "bravo-3"}
BASE = "openk2-embedded"


def _finetune(root: Path, name: str, answer: str) -> Path:
    """`openk2 finetune --data CHATS --base embedded --lora-rank 8` on four copies of one chat."""
    chat = {"messages": [{"role": "user", "content": QUESTION},
                         {"role": "assistant", "content": answer}]}  # fmt: skip
    data = root / f"{name}.jsonl"
    data.write_text((json.dumps(chat) + "\n") * 4)
    opts = FinetuneOptions(
        data=data, base=resolve_model("embedded"), out_dir=root / name, lora_rank=8,
        epochs=8.0, held_out=0.25, seq_len=64, batch_size=1, lr=5e-3, threads=1,
    )  # fmt: skip
    summary = run_finetune(opts)
    assert summary["after"]["exact_match"] == 1.0, summary
    return Path(summary["peft_adapter"])


@pytest.fixture(scope="session")
def learned_adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Adapter name → PEFT folder, trained once per session."""
    root = tmp_path_factory.mktemp("lora-learned")
    return {name: _finetune(root, name, answer) for name, answer in ANSWERS.items()}


@pytest.fixture(scope="module")
def served(learned_adapters: dict[str, Path]):
    lora = {name: str(path) for name, path in learned_adapters.items()}
    server = LiveServer(build_state(ServeConfig(model="embedded", lora=lora))).start()
    yield server
    server.stop()


def _record_batches(server: LiveServer, expected: int) -> list[list[str | None]]:
    """Record each forward call's per-row adapters (the runner's `AdapterSet.select`), and hold
    engine steps until `expected` requests are first queued, so concurrent arrivals share a batch
    deterministically instead of by HTTP timing."""
    engine = server.state.engine.engine
    adapters, step = engine.adapters, engine.step
    calls: list[list[str | None]] = []
    select = adapters.select
    deadline = time.monotonic() + 30
    opened = False

    def recording_select(rows: list[str | None]) -> None:
        calls.append(list(rows))
        select(rows)

    def gated_step():  # type: ignore[no-untyped-def]
        nonlocal opened
        queued = len(engine.scheduler.waiting) + len(engine.scheduler.running)
        opened = opened or queued >= expected or time.monotonic() > deadline
        if not opened:
            time.sleep(0.005)
            return []
        return step()

    adapters.select, engine.step = recording_select, gated_step
    return calls


def test_each_adapter_answers_what_it_learned_in_one_batch(served: LiveServer) -> None:
    calls = _record_batches(served, expected=3)

    async def ask_all() -> dict[str, str]:
        client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="x", max_retries=0)
        names = [BASE, *ANSWERS]
        replies = await asyncio.gather(*(
            client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": QUESTION}],
                temperature=0.0, max_tokens=12,
            ) for name in names
        ))  # fmt: skip
        assert [r.model for r in replies] == names
        contents = [r.choices[0].message.content or "" for r in replies]
        return dict(zip(names, contents, strict=True))

    answers = asyncio.run(ask_all())
    assert {name: answers[name].strip() for name in ANSWERS} == ANSWERS
    assert not any(learned in answers[BASE] for learned in ANSWERS.values()), answers[BASE]
    mixed = [rows for rows in calls if {None, *ANSWERS} <= set(rows)]
    assert mixed, f"no forward call mixed the base and both adapters: {calls}"


def test_an_adapter_for_another_base_of_the_same_shape_is_warned_about(
    learned_adapters: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The `tiny` preset has the embedded model's shapes, so only the adapter's recorded base
    (`base_model_name_or_path`) can tell that it was not trained on it."""
    adapter = learned_adapters["alpha"]
    assert recorded_base_differs(adapter, Path(resolve_model("embedded"))) is None
    with caplog.at_level(logging.WARNING, logger="openk2.serve.launch"):
        build_state(ServeConfig(model="tiny", lora={"alpha": str(adapter)}))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("alpha was trained on" in m and "openk2-embedded" in m for m in warned), warned
