"""The status line of the interactive shell, and the settings a model switch brings along.

After every turn the shell prints one dim line: model, mode, tokens this session, how full the
context is (what compaction watches) and, when the config gives the model's `price`, the cost
so far. `/model NAME` and `/thinking on|off` change the settings the next call goes out with
(the model's `[models.NAME]` table: context window, thinking, sampling, price).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openk2.code.config import CodeSettings
    from openk2.code.ui.shell import ShellState


def status_line(state: ShellState) -> str:
    """`kimi-k2.6 | auto | 12.3k tokens | context 8% of 262k | $0.0123`."""
    s = state.session
    c = s.parts.compactor
    size = c.size(s.parts.history, s.last_usage)
    policy = getattr(getattr(s.parts.toolset.gate, "gate", None), "policy", None)
    fields = [s.parts.provider.model_name]
    if policy is not None:
        fields.append(policy.mode)
    fields += [f"{_short(state.usage.total_tokens)} tokens",
               f"context {size / c.window:.0%} of {_short(c.window)}"]
    if state.settings is not None and state.settings.thinking is not None:
        fields.append("thinking" if state.settings.thinking else "instant")
    if state.settings is not None and (cost := state.settings.cost(state.usage)) is not None:
        fields.append(f"${cost:.4f}")
    return " | ".join(fields)


def _short(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 10_000 else str(n)


def apply_settings(state: ShellState, settings: CodeSettings) -> None:
    """Make the session's next calls use `settings` (window, sampling, thinking)."""
    state.settings = settings
    parts = state.session.parts
    parts.compactor.window = settings.context_window
    parts.settings = settings.generation()
    if parts.subagents is not None:
        parts.subagents.settings = parts.settings
