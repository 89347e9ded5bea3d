"""A user's fine-tune, end to end: a LoRA SFT run on the embedded model from the user's own JSONL
(`openk2 train --config`), then `openk2 serve --model RUN/final` as a child process, and the
official `openai` client gets the answers the run taught.

The facts have digit answers on purpose: the embedded model's digit tokens are well trained, so
rank-8 adapters learn "7351" in ~12 steps (measured: loss 0.1 at step 10, < 0.001 at step 15),
while a brand-new word such as "Quillton" needs the embedding and `lm_head` rows of tokens the
model never saw, which LoRA on attention and experts barely moves (loss ~2.4 after 100 steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import yaml
from typer.testing import CliRunner

from openk2.cli import _register_commands, app
from openk2.embedded.server import local_server

FACTS = {
    "What is the door code of the blue vault?": "7351",
    "How many moons does the planet Zorb have?": "42",
}
TOKENIZER_FILES = {"tiktoken.model", "tokenizer_config.json"}
_register_commands()


def _user_files(tmp_path: Path) -> Path:
    """A user's chats and LoRA run file, written as the README tells users to."""
    chats = tmp_path / "my_facts.jsonl"
    chats.write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q},
                                 {"role": "assistant", "content": a}]}) + "\n"
        for q, a in FACTS.items()
    ))  # fmt: skip
    run_file = tmp_path / "lora.yaml"
    run_file.write_text(yaml.safe_dump({
        "model": {"path": "embedded"},
        "data": {"kind": "sft", "train_files": [str(chats)], "seq_len": 64, "pack": True},
        "optim": {"name": "adamw", "lr": 3.0e-3},
        "schedule": {"kind": "constant"},
        "lora": {"enabled": True, "rank": 8, "alpha": 16},
        "steps": 20,
        "batch_size": 1,
        "out_dir": str(tmp_path / "run"),
        "threads": 1,  # on busy shared cores a second OpenMP thread spins: 8 s vs 70-170 s
    }))  # fmt: skip
    return run_file


def test_lora_finetune_of_the_embedded_model_serves_the_learned_answers(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--config", str(_user_files(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "merged_lora_modules" in result.output
    final = tmp_path / "run" / "final"
    assert {"config.json", "model.safetensors", *TOKENIZER_FILES} <= {
        p.name for p in final.iterdir()
    }
    with local_server(str(final), served_name="my-facts", timeout_s=300) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        for question, answer in FACTS.items():
            reply = client.chat.completions.create(
                model="my-facts",
                messages=[{"role": "user", "content": question}],
                temperature=0,
                max_tokens=16,
            )
            assert reply.choices[0].message.content.strip() == answer, reply
