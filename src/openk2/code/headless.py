"""`openk2 code -p`: one task, no questions asked (whatever would ask is denied), a summary.

The provider is any OpenAI-compatible endpoint; the CLI passes in the one it built (an
embedded server's, for `--model embedded`). Token counts use the model's tokenizer when one is
configured, else an estimate corrected by the usage the server reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openk2.agent.llm.openai_compat import OpenAICompatProvider
from openk2.agent.llm.provider import ChatProvider
from openk2.code.app import RunSummary
from openk2.code.build import Safety, open_session
from openk2.code.compaction import TokenCount, approx_tokens
from openk2.code.config import CodeSettings, ConfigError
from openk2.code.output import Reporter
from openk2.code.sessions import SessionStore
from openk2.code.tools.base import CodeTool
from openk2.code.workspace import Workspace


def make_provider(settings: CodeSettings) -> OpenAICompatProvider:
    """The HTTP provider for the configured endpoint (a missing setting says where to set it)."""
    missing = [n for n in ("base_url", "model") if not getattr(settings, n)]
    if missing:
        flags = ", ".join(f"--{n.replace('_', '-')}" for n in missing)
        raise ConfigError(f"missing {flags}: pass the flag, set OPENAI_BASE_URL / KIMI_BASE_URL "
                          "(and KIMI_MODEL_NAME), or put it in ~/.config/openk2/code.toml")
    assert settings.base_url is not None and settings.model is not None
    return OpenAICompatProvider(settings.base_url, settings.model, settings.api_key)


def token_counter(settings: CodeSettings) -> TokenCount:
    """Exact counts with the configured tokenizer, else ~4 characters per token."""
    if not settings.tokenizer:
        return approx_tokens
    from openk2.tokenizer import Tokenizer

    try:
        tok = Tokenizer.from_pretrained(settings.tokenizer)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    return lambda text: len(tok.encode(text, allow_special=False))


async def run_headless(
    settings: CodeSettings,
    workspace: Workspace,
    *,
    prompt: str | None,
    resume: str | None,
    provider: ChatProvider,
    safety: Safety,
    reporter: Reporter,
    store: SessionStore | None = None,
    extra_tools: Sequence[CodeTool[Any]] = (),
) -> RunSummary:
    """Run one task (or finish an interrupted one) and print the outcome."""
    session = open_session(settings, workspace, provider=provider, safety=safety,
                           store=store or SessionStore(), resume=resume, emit=reporter.emit,
                           count=token_counter(settings), extra_tools=extra_tools)
    try:
        if prompt:
            session.add_user(prompt)
        elif session.parts.history[-1].role == "assistant":
            raise ConfigError(f"session {session.log.id} already ended with an answer; "
                              "give a new task with -p")
        summary = await session.run()
    finally:
        session.log.close()
    reporter.finish(summary)
    return summary
