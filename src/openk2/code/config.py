"""Settings of a run, from flags, the environment and TOML files (first one that sets it wins).

Order: command-line flags, then the environment (`KIMI_BASE_URL`/`KIMI_API_KEY`,
`OPENAI_BASE_URL`/`OPENAI_API_KEY`, `KIMI_MODEL_NAME`), then the project's
`.openk2/code.toml`, then the user's `~/.config/openk2/code.toml`. A project file comes with
the repository, which may be hostile: it can choose the model and limits but never the
approval mode, an API key, hooks, MCP servers or network hosts (a cloned repo must not be able
to switch itself to yolo, send your key elsewhere, start programs or open the network).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:  # the CLI reads settings before it needs the provider layer
    from openk2.agent.llm.message import Usage
    from openk2.agent.llm.provider import GenerationSettings

Mode: TypeAlias = Literal["manual", "auto", "yolo"]
MODES: tuple[Mode, ...] = ("manual", "auto", "yolo")
PROJECT_FORBIDDEN = frozenset({"mode", "api_key", "mcp_servers", "hooks", "allowed_hosts",
                               "fetch"})
"""Keys a project's own `.openk2/code.toml` may not set."""


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it and where to set it."""


@dataclass(kw_only=True, slots=True)
class CodeSettings:
    """Everything a headless or interactive run needs to know before it starts."""

    base_url: str | None = None
    """OpenAI-compatible endpoint, e.g. `https://api.moonshot.ai/v1`."""
    model: str | None = None
    """Model id sent to the endpoint; `embedded` = openk2's own model through a local server."""
    api_key: str | None = None
    """Bearer key for the endpoint."""
    mode: Mode = "manual"
    """Approval mode: manual asks (headless: denies), auto allows workspace work, yolo more."""
    max_steps: int = 100
    """LLM calls per run before it stops."""
    context_window: int = 131_072
    """The model's context window in tokens (compaction starts at 85% of it)."""
    tokenizer: str | None = None
    """Directory or file of the model's `tiktoken.model`, to count context tokens exactly."""
    temperature: float | None = None
    """Sampling temperature (`None` = the server's default)."""
    max_tokens: int | None = None
    """Completion tokens per call (`None` = the server's default)."""
    repeat_limit: int = 5
    """Identical consecutive steps (same calls, same results) that stop the run."""
    mcp_servers: dict[str, Any] = field(default_factory=dict)
    """`[mcp_servers.NAME]` tables: stdio (`command`, `args`, `env`) or HTTP (`url`, `headers`)."""
    rules: list[dict[str, Any]] = field(default_factory=list)
    """`[[rules]]`: policy rules (`openk2.agent.guard.load_rules`); a project may add only
    `deny` and `ask` rules, and they add to the user's."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Hosts shell commands may reach through the sandbox's filtering proxy (default: none,
    the network is off)."""
    snapshots: bool = True
    """Snapshot the workspace (shadow git, outside it) before every edit and command (`/undo`)."""
    hooks: list[dict[str, Any]] = field(default_factory=list)
    """`[[hooks]]`: PreToolUse / PostToolUse / Stop commands, failing closed (user file only)."""
    swarm: bool = False
    """Give the agent the swarm tools (create_subagent, assign_task, swarm, ...); workers get
    the read-only tools."""
    fetch: dict[str, Any] = field(default_factory=dict)
    """`[fetch]`: `allow = ["docs.python.org", "127.0.0.1:8000"]` turns FetchURL on for those
    hosts (user file only; default: no FetchURL tool)."""
    thinking: bool | None = None
    """Thinking on (true) or instant answers (false); None leaves the endpoint's default. Sent
    as K2.6's `thinking: {type}` and as `chat_template_kwargs.thinking` (vLLM, SGLang)."""
    price: dict[str, float] = field(default_factory=dict)
    """USD per million tokens, `input`, `output` and `cached_input`, for the cost in the status
    line and `/cost` (empty: no cost shown)."""
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`[models.NAME]` tables: `context_window`, `thinking`, `tokenizer`, `temperature`,
    `max_tokens` and `price` of that model. They apply when NAME is the model in use (also
    after `/model NAME`), over the top-level values; flags still win."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.max_steps < 1:
            raise ConfigError("max_steps must be at least 1")
        if self.context_window < 256:
            raise ConfigError("context_window must be at least 256 tokens")
        if self.thinking is not None and not isinstance(self.thinking, bool):
            raise ConfigError(f"thinking must be true or false, not {self.thinking!r}")
        _check_price(self.price)
        for name, table in self.models.items():
            if bad := sorted(set(table) - set(MODEL_KEYS)):
                raise ConfigError(f"[models.{name}]: unknown key(s) {', '.join(bad)}; known: "
                                  f"{', '.join(MODEL_KEYS)}")

    def for_model(self, name: str, *, keep: frozenset[str] = frozenset()) -> CodeSettings:
        """These settings with `model = name` and its `[models.NAME]` table applied (keys in
        `keep` were given as flags and stay)."""
        table = {k: v for k, v in self.models.get(name, {}).items() if k not in keep}
        try:
            return dataclasses.replace(self, model=name, **table)
        except TypeError as exc:
            raise ConfigError(f"[models.{name}]: {exc}") from exc

    def generation(self) -> GenerationSettings:
        """Per-call sampling options for the provider, thinking included."""
        from openk2.agent.llm.provider import GenerationSettings

        extra: dict[str, Any] = {}
        if self.thinking is not None:
            extra = {"thinking": {"type": "enabled" if self.thinking else "disabled"},
                     "chat_template_kwargs": {"thinking": self.thinking}}
        return GenerationSettings(temperature=self.temperature, max_tokens=self.max_tokens,
                                  extra_body=extra)

    def cost(self, usage: Usage) -> float | None:
        """USD for `usage` at `price`, or None when no price is configured."""
        if not self.price:
            return None
        cached = usage.cached_tokens
        fresh = usage.prompt_tokens - cached
        per_m = (fresh * self.price.get("input", 0.0)
                 + cached * self.price.get("cached_input", self.price.get("input", 0.0))
                 + usage.completion_tokens * self.price.get("output", 0.0))
        return per_m / 1e6


MODEL_KEYS = ("context_window", "thinking", "tokenizer", "temperature", "max_tokens", "price")
"""What a `[models.NAME]` table may set."""
PRICE_KEYS = ("input", "output", "cached_input")


def _check_price(price: Mapping[str, Any]) -> None:
    if bad := sorted(set(price) - set(PRICE_KEYS)):
        raise ConfigError(f"price: unknown key(s) {', '.join(bad)}; known: {', '.join(PRICE_KEYS)}")
    for key, value in price.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"price.{key} must be a non-negative number (USD per million "
                              f"tokens), not {value!r}")


def user_config_path() -> Path:
    """`$XDG_CONFIG_HOME/openk2/code.toml` (default `~/.config/openk2/code.toml`)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "openk2" / "code.toml"


def load_settings(
    flags: Mapping[str, Any], workspace: Path, env: Mapping[str, str] | None = None
) -> CodeSettings:
    """Merge flags > environment > project TOML > user TOML into checked settings."""
    env = os.environ if env is None else env
    project = _read_toml(workspace / ".openk2" / "code.toml")
    if bad := sorted(PROJECT_FORBIDDEN & project.keys()):
        raise ConfigError(f"{workspace / '.openk2' / 'code.toml'} may not set {', '.join(bad)} "
                          f"(put it in {user_config_path()} or pass a flag)")
    user = _read_toml(user_config_path())
    merged: dict[str, Any] = {}
    for layer in (user, project, _from_env(env), dict(flags)):
        merged.update({k: v for k, v in layer.items() if v is not None})
    merged["rules"] = [*user.get("rules", []), *_project_rules(project, workspace)]
    known = {f.name for f in fields(CodeSettings)}
    if unknown := sorted(merged.keys() - known):
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        settings = CodeSettings(**merged)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
    if settings.model is None or settings.model not in settings.models:
        return settings
    given = frozenset(k for k, v in flags.items() if v is not None)
    return settings.for_model(settings.model, keep=given)


def _project_rules(project: Mapping[str, Any], workspace: Path) -> list[Any]:
    rules = project.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError(f"{workspace / '.openk2' / 'code.toml'}: `rules` must be [[rules]]")
    for rule in rules:
        if not isinstance(rule, Mapping) or rule.get("decision") not in ("deny", "ask"):
            raise ConfigError(f"{workspace / '.openk2' / 'code.toml'}: a project may add only "
                              "`deny` or `ask` rules (allow rules go in your own config)")
    return rules


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    if env.get("KIMI_BASE_URL"):
        url, key = env["KIMI_BASE_URL"], env.get("KIMI_API_KEY") or env.get("OPENAI_API_KEY")
    else:
        url, key = env.get("OPENAI_BASE_URL"), env.get("OPENAI_API_KEY") or env.get("KIMI_API_KEY")
    return {"base_url": url or None, "api_key": key or None,
            "model": env.get("KIMI_MODEL_NAME") or None}


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return data.get("code", data) if isinstance(data.get("code"), dict) else data
