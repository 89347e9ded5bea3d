"""`openk2 serve` with the web app mounted, on a thread, for the app's tests.

The same composition as the CLI (`create_app` + `mount_app`), served by uvicorn on a free
127.0.0.1 port; the embedded model (the shipped checkpoint) or any model + tokenizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from openk2.app import AppConfig, mount_app
from openk2.app.agent_mode import SwarmRuns
from openk2.cli.workspace import workspace_toolset
from openk2.engine.async_engine import AsyncLLMEngine
from openk2.engine.config import EngineConfig
from openk2.engine.llm_engine import LLMEngine
from openk2.serve.api import create_app
from openk2.serve.state import ConcurrencyLimiter, ServerState
from serve.live import LiveServer


class AppServer(LiveServer):
    """uvicorn serving `serve`'s app with the web app mounted, until `stop()`."""

    def __init__(self, state: ServerState, config: AppConfig) -> None:
        app = create_app(state)
        self.runs: SwarmRuns = mount_app(app, config)
        super().__init__(state, app)


@contextlib.contextmanager
def serving_app(model: nn.Module, tokenizer: object, name: str, *,
                workspace: Path | None = None, runs_dir: Path = Path("runs"),
                api_keys: list[str] | None = None) -> Iterator[AppServer]:
    """Serve `model` as `name` with the web app for the duration of a `with` block."""
    engine = EngineConfig(max_model_len=2048, max_num_seqs=32, max_num_batched_tokens=512,
                          num_blocks=400)
    state = ServerState(engine=AsyncLLMEngine(LLMEngine(model, tokenizer, engine)),
                        tokenizer=tokenizer, served_model_names=[name],
                        api_keys=api_keys or [], limiter=ConcurrencyLimiter(None))
    config = AppConfig(workspace=workspace, runs_dir=runs_dir, make_tools=workspace_toolset)
    server = AppServer(state, config).start()
    try:
        yield server
    finally:
        server.stop()
