"""Layouts that fit, refusals with the arithmetic, and flags from the documented tables."""

from __future__ import annotations

import pytest

from openk2.deploy.commands import ServeOptions, build_argv
from openk2.deploy.engines import ENGINES, get_engine
from openk2.deploy.hardware import parse_gpus
from openk2.deploy.models import load_model
from openk2.deploy.plan import DeployRefused, make_plan


def _plan(engine: str, model: str, gpus: str, **kw):
    return make_plan(get_engine(engine), load_model(model), model, parse_gpus(gpus), **kw)


def test_k26_on_8xh200_is_tp8_at_full_context() -> None:
    plan = _plan("vllm", "moonshotai/Kimi-K2.6", "8xH200")
    assert (plan.layout.tp, plan.layout.dp, plan.context) == (8, 1, 262144)
    # vLLM's K2-Thinking recipe reports 715,072 tokens on 8xH200 TP8; same order here
    assert 550_000 < plan.kv_tokens < 800_000
    argv = build_argv(plan, ServeOptions())
    assert argv[:3] == ["vllm", "serve", "moonshotai/Kimi-K2.6"]
    for pair in (["--tool-call-parser", "kimi_k2"], ["--reasoning-parser", "kimi_k2"],
                 ["--mm-encoder-tp-mode", "data"], ["--tensor-parallel-size", "8"],
                 ["--max-model-len", "262144"]):
        assert " ".join(pair) in " ".join(argv)
    assert "--enable-auto-tool-choice" in argv and "--trust-remote-code" in argv


def test_k26_int4_on_4xh100_refuses_with_the_numbers() -> None:
    with pytest.raises(DeployRefused) as info:
        _plan("vllm", "moonshotai/Kimi-K2.6", "4xH100")
    text = str(info.value)
    assert "does not fit 4xH100" in text and "595.1 GB (int4)" in text
    assert "80 GB x 0.90 = 72.0 GB" in text and "weights  148.8 GB" in text
    assert "needs at least 10 x H100" in text


def test_fp8_k2_instruct_needs_16_gpus() -> None:
    with pytest.raises(DeployRefused, match="fp8"):
        _plan("vllm", "moonshotai/Kimi-K2-Instruct", "8xH200")
    plan = _plan("vllm", "moonshotai/Kimi-K2-Instruct", "16xH200")
    assert plan.layout.tp == 16 and plan.context == 131072
    argv = build_argv(plan, ServeOptions())
    assert "--mm-encoder-tp-mode" not in argv  # text-only
    assert "--distributed-executor-backend ray" in " ".join(argv)  # two nodes
    assert "spans 2 nodes" in plan.notes[0]
    assert not _plan("vllm", "moonshotai/Kimi-K2.6", "8xH200").notes


def test_sglang_on_amd_caps_tp_at_4_and_uses_dp() -> None:
    plan = _plan("sglang", "moonshotai/Kimi-K2.6", "8xMI300X")
    assert (plan.layout.tp, plan.layout.dp) == (4, 2)
    assert plan.model.num_attention_heads // plan.layout.tp % 16 == 0


def test_vllm_dp_layouts_use_expert_parallel() -> None:
    plan = _plan("vllm", "moonshotai/Kimi-K2-Instruct", "32xH200", context=131072)
    assert plan.layout.tp == 32  # largest TP first, like the recipes
    plan = _plan("vllm", "moonshotai/Kimi-K2.6", "16xH100")
    argv = build_argv(plan, ServeOptions())
    assert plan.layout.gpus == 16
    if plan.layout.dp > 1:
        assert "--enable-expert-parallel" in argv


def test_context_is_lowered_with_a_note_or_refused_when_asked() -> None:
    plan = _plan("vllm", "moonshotai/Kimi-K2.6", "4xB200")
    assert plan.context < 262144 and "context lowered" in plan.notes[0]
    with pytest.raises(DeployRefused, match="262144-token sequence"):
        _plan("vllm", "moonshotai/Kimi-K2.6", "4xB200", context=262144)
    fp8 = _plan("vllm", "moonshotai/Kimi-K2.6", "4xB200", kv_dtype="fp8")
    assert fp8.kv_tokens > 1.9 * plan.kv_tokens  # FP8 KV halves the bytes per token


def test_ktransformers_keeps_experts_on_gpu_as_memory_allows() -> None:
    plan = _plan("ktransformers", "moonshotai/Kimi-K2.5", "8xL20", context=50000)
    # K2.5 deploy guide: --kt-num-gpu-experts 180 on 8xL20 with --max-total-tokens 50000
    assert 150 <= plan.gpu_experts <= 220 and plan.cpu_expert_bytes > 200e9
    argv = build_argv(plan, ServeOptions())
    assert argv[argv.index("--kt-num-gpu-experts") + 1] == str(plan.gpu_experts)
    with pytest.raises(ValueError, match="native-INT4"):
        _plan("ktransformers", "moonshotai/Kimi-K2-Instruct", "8xL20")


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("model", ["moonshotai/Kimi-K2.6", "moonshotai/Kimi-K2-Thinking"])
def test_every_emitted_flag_is_in_the_engines_documented_options(engine: str, model: str) -> None:
    gpus = "8xL20" if engine == "ktransformers" else "8xH200"
    plan = _plan(engine, model, gpus, kv_dtype="fp8")
    argv = build_argv(plan, ServeOptions(served_model_name="k", chat_template="t.jinja"))
    flags = [a for a in argv if a.startswith("--")]
    assert flags and all(ENGINES[engine].accepts(f) for f in flags)
    assert len(flags) == len(set(flags))  # no flag given twice
    kv = argv[argv.index("--kv-cache-dtype") + 1]
    assert kv == ENGINES[engine].kv_dtypes["fp8"]


def test_gpu_parsing() -> None:
    assert str(parse_gpus("8xh200")) == "8xH200" and parse_gpus("4X GB200").count == 4
    with pytest.raises(ValueError, match="known: H200"):
        parse_gpus("8xT4")
    with pytest.raises(ValueError, match="8xH200"):
        parse_gpus("H200")


def test_verification_verdict_reads_the_eval_report() -> None:
    from openk2.deploy.launch import failures

    ok = {"passed": 9, "samples": 9, "errors": 0, "extra": {"checks": {"usage": True}}}
    bad = {"passed": 1, "samples": 2, "errors": 0, "extra": {}}
    report = {"endpoints": {"d": {"suites": {"preflight": ok, "tool-calls": bad}}}}
    assert failures(report) == ["tool-calls: 1/2 passed, 0 endpoint errors"]
    ok["extra"]["checks"]["usage"] = False
    ok["passed"] = 8
    assert "failed checks: usage" in failures(report)[0]


def test_deploy_imports_no_torch_and_no_runtime_package() -> None:
    import subprocess
    import sys

    code = ("import sys, openk2.deploy.commands, openk2.deploy.launch, openk2.deploy.report; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(("
            "'openk2.model', 'openk2.engine', 'openk2.serve', 'openk2.agent', 'openk2.evals'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_sglang_dp_attention_multiplies_the_cache_and_replicates_attention() -> None:
    kw = {"context": 65536, "memory_fraction": 0.93}
    tp4 = _plan("sglang", "moonshotai/Kimi-K2.6", "4xGB200", **kw)
    dpa = _plan("sglang", "moonshotai/Kimi-K2.6", "4xGB200", dp_attention=True, **kw)
    argv = " ".join(build_argv(dpa, ServeOptions()))
    assert "--tp 4 --dp 4 --enable-dp-attention" in argv  # the cookbook's GB200 TP4 DP4
    # attention (61 x 101.1M BF16 = 12.3 GB) is now 1/1 per GPU instead of 1/4
    attention = 2 * 61 * 101_124_096
    assert dpa.fit.weights - tp4.fit.weights == pytest.approx(attention * 3 / 4, abs=2)
    assert 4 * dpa.kv_tokens > tp4.kv_tokens  # four ranks, each with its own cache
    with pytest.raises(ValueError, match="SGLang's"):
        _plan("vllm", "moonshotai/Kimi-K2.6", "8xH200", dp_attention=True)
    with pytest.raises(DeployRefused, match="larger --memory-fraction"):  # 0.88 is too tight
        _plan("sglang", "moonshotai/Kimi-K2.6", "4xGB200", dp_attention=True)
