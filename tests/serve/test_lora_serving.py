"""`openk2 serve --lora NAME=PATH`: adapters saved by openk2's trainer in PEFT format, served
over one base model and picked by the request's `model`, through the official client."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import openai
import pytest
import torch

from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.engine.sampling_params import SamplingParams
from openk2.serve.launch import ServeConfig, build_state, load_model_and_tokenizer
from openk2.train.lora import apply_lora, merge_lora
from openk2.train.peft_format import save_peft_adapter

from .live import LiveServer

TARGETS = ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
           "gate_proj", "up_proj", "down_proj"]  # fmt: skip
PROMPT = list(range(300, 340))


def trained_adapter(base: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The base with openk2 LoRA adapters whose B is set (as training would leave it)."""
    model = copy.deepcopy(base)
    apply_lora(model, targets=TARGETS, rank=4, alpha=8, routed_experts=False)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p_name, p in model.named_parameters():
            if p_name.endswith("lora_B"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return model


def greedy_text(model: torch.nn.Module, tokenizer: object, prompt: list[int]) -> str:
    engine = LLMEngine(model, tokenizer, EngineConfig(max_model_len=256, num_blocks=64))
    params = SamplingParams(
        temperature=0.0, max_tokens=6, ignore_eos=True, skip_special_tokens=True
    )
    return engine.generate([prompt], params)[0][0].text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lora-serve")
    base, tokenizer, _ = load_model_and_tokenizer(ServeConfig(model="debug"))
    expected = {"debug": greedy_text(copy.deepcopy(base), tokenizer, PROMPT)}
    lora = {}
    for name, seed in (("alpha", 1), ("beta", 2)):
        adapted = trained_adapter(base, seed)
        lora[name] = str(save_peft_adapter(adapted, root / name))
        merge_lora(adapted)
        expected[name] = greedy_text(adapted, tokenizer, PROMPT)
    engine = EngineConfig(max_model_len=256, max_num_seqs=8, num_blocks=96, packed_gemms=True)
    state = build_state(ServeConfig(model="debug", lora=lora, engine=engine))
    server = LiveServer(state).start()
    yield server, expected
    server.stop()


def test_models_lists_base_and_adapters(served) -> None:
    server, _ = served
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x")
    cards = client.models.list().data
    assert [c.id for c in cards] == ["debug", "alpha", "beta"]
    assert [getattr(c, "parent", None) for c in cards] == [None, "debug", "debug"]
    chat = client.chat.completions.create(
        model="beta", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert chat.model == "beta" and chat.choices[0].finish_reason in ("stop", "length")


def test_concurrent_requests_get_each_adapters_merged_model_answer(served) -> None:
    server, expected = served
    assert len(set(expected.values())) == 3  # the adapters change the answer

    async def ask_all() -> dict[str, str]:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x")
        names = ["debug", "alpha", "beta", "alpha"]
        replies = await asyncio.gather(*(
            client.completions.create(model=n, prompt=PROMPT, max_tokens=6, temperature=0.0,
                                      extra_body={"ignore_eos": True})
            for n in names
        ))  # fmt: skip
        assert replies[1].choices[0].text == replies[3].choices[0].text
        return {n: r.choices[0].text for n, r in zip(names, replies, strict=True)}

    assert asyncio.run(ask_all()) == expected


def test_unknown_model_is_a_404_naming_the_choices(served) -> None:
    server, _ = served
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x")
    with pytest.raises(openai.NotFoundError, match="debug, alpha, beta"):
        client.completions.create(model="gamma", prompt=PROMPT, max_tokens=2)


def test_a_bad_adapter_path_stops_the_start_with_its_name(tmp_path: Path) -> None:
    cfg = ServeConfig(model="debug", lora={"broken": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match=r"--lora broken=.*missing.*no PEFT adapter config"):
        build_state(cfg)
    with pytest.raises(ValueError, match="base model's served name"):
        build_state(ServeConfig(model="debug", lora={"debug": str(tmp_path)}))


def test_lora_is_refused_with_quant_or_a_vision_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--lora cannot be combined with --quant"):
        build_state(ServeConfig(model="debug", quant="int8", lora={"a": str(tmp_path)}))
    with pytest.raises(ValueError, match="text models only"):
        build_state(ServeConfig(model="debug", vision="debug", lora={"a": str(tmp_path)}))


def test_cli_reports_bad_lora_options_before_serving(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openk2.cli import _register_commands, app

    _register_commands()
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--model", "debug", "--lora", "nopath"])
    assert result.exit_code == 1 and "expected NAME=PATH" in result.output
    missing = f"x={tmp_path / 'gone'}"
    result = runner.invoke(app, ["serve", "--model", "debug", "--lora", missing])
    assert result.exit_code == 1 and "--lora x=" in result.output
