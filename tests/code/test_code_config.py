"""Settings precedence, the hostile-project rule, and AGENTS.md collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.code.config import ConfigError, load_settings
from openk2.code.prompt import agents_md_files, system_prompt
from openk2.code.workspace import Workspace


def test_flags_beat_env_beat_project_beat_user(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "openk2").mkdir(parents=True)
    (tmp_path / "cfg" / "openk2" / "code.toml").write_text(
        'model = "user-model"\nbase_url = "http://user/v1"\napi_key = "uk"\nmode = "auto"\n'
        "max_steps = 7\n")
    ws = tmp_path / "ws"
    (ws / ".openk2").mkdir(parents=True)
    (ws / ".openk2" / "code.toml").write_text('model = "project-model"\nmax_steps = 9\n')
    s = load_settings({}, ws, env={})
    assert (s.model, s.base_url, s.api_key, s.mode, s.max_steps) == (
        "project-model", "http://user/v1", "uk", "auto", 9)
    env = {"OPENAI_BASE_URL": "http://openai/v1", "OPENAI_API_KEY": "ok",
           "KIMI_BASE_URL": "http://kimi/v1", "KIMI_API_KEY": "kk"}
    s = load_settings({}, ws, env=env)
    assert (s.base_url, s.api_key) == ("http://kimi/v1", "kk")
    s = load_settings({"base_url": "http://flag/v1", "max_steps": 3, "model": None}, ws, env=env)
    assert (s.base_url, s.max_steps, s.model) == ("http://flag/v1", 3, "project-model")


def test_project_file_may_not_pick_mode_or_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / ".openk2").mkdir()
    (tmp_path / ".openk2" / "code.toml").write_text('mode = "yolo"\n')
    with pytest.raises(ConfigError, match="may not set mode"):
        load_settings({}, tmp_path, env={})


def test_bad_settings_are_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with pytest.raises(ConfigError, match="mode must be one of"):
        load_settings({"mode": "reckless"}, tmp_path, env={})
    (tmp_path / ".openk2").mkdir()
    (tmp_path / ".openk2" / "code.toml").write_text("colour = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, tmp_path, env={})


def test_agents_md_from_git_root_down(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sub = repo / "pkg" / "sub"
    sub.mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / "AGENTS.md").write_text("outside the repo")
    (repo / "AGENTS.md").write_text("ROOT RULES")
    (sub / "AGENTS.md").write_text("SUB RULES")
    assert agents_md_files(sub) == [repo / "AGENTS.md", sub / "AGENTS.md"]
    text = system_prompt(Workspace.open(sub), sandboxed=True)
    assert text.index("ROOT RULES") < text.index("SUB RULES")
    assert "outside the repo" not in text and str(sub) in text and "Shell sandbox: on" in text


def test_token_counter_uses_the_tokenizer_when_given() -> None:
    from openk2.code.config import CodeSettings
    from openk2.code.headless import token_counter
    from openk2.tokenizer import default_tokenizer, default_tokenizer_path

    text = "def add(a, b):\n    return a + b\n" * 20
    count = token_counter(CodeSettings(tokenizer=str(default_tokenizer_path())))
    assert count(text) == len(default_tokenizer().encode(text, allow_special=False))
    assert token_counter(CodeSettings())(text) == len(text) // 4 + 1
    with pytest.raises(ConfigError, match="no tokenizer vocabulary"):
        token_counter(CodeSettings(tokenizer="/nonexistent"))


USER_TOML = """model = "kimi-k2.6"
context_window = 131072
price = { input = 0.6, output = 2.5, cached_input = 0.15 }

[models."kimi-k2.6"]
context_window = 262144
thinking = false

[models.small]
context_window = 32768
thinking = true
price = { input = 0.1, output = 0.4 }
"""


def test_per_model_tables_apply_below_flags(tmp_path: Path, monkeypatch) -> None:
    from openk2.agent.llm import Usage

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "openk2").mkdir(parents=True)
    (tmp_path / "cfg" / "openk2" / "code.toml").write_text(USER_TOML)
    s = load_settings({}, tmp_path, env={})
    assert (s.model, s.context_window, s.thinking) == ("kimi-k2.6", 262144, False)
    assert s.generation().extra_body == {"thinking": {"type": "disabled"},
                                         "chat_template_kwargs": {"thinking": False}}
    assert s.cost(Usage(2_000_000, 1_000_000, 1_000_000)) == pytest.approx(3.25)
    small = load_settings({"model": "small", "context_window": 16384}, tmp_path, env={})
    assert (small.context_window, small.thinking) == (16384, True)  # the flag wins
    assert small.price == {"input": 0.1, "output": 0.4}
    other = load_settings({"model": "other"}, tmp_path, env={})
    assert (other.context_window, other.thinking) == (131072, None)
    assert other.generation().extra_body == {}


@pytest.mark.parametrize("toml, error", [
    ('[models.m]\nwindow = 5\n', "unknown key"),
    ('price = { input = -1 }\n', "non-negative"),
    ('price = { inpt = 1 }\n', "unknown key"),
    ('thinking = "yes"\n', "true or false"),
])
def test_bad_model_settings_say_what_is_wrong(tmp_path: Path, monkeypatch, toml: str,
                                              error: str) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "openk2").mkdir(parents=True)
    (tmp_path / "cfg" / "openk2" / "code.toml").write_text(toml)
    with pytest.raises(ConfigError, match=error):
        load_settings({}, tmp_path, env={})
