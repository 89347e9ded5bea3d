"""OpenAI-compatible HTTP server and the web chat page.

Public API: `ServeConfig` + `run` / `build_app` (what `openk2 serve` uses), `create_app` for an
existing `ServerState`. FastAPI and uvicorn are imported only by the modules that need them.
"""

from openk2.serve.launch import ServeConfig, build_app, run

__all__ = ["ServeConfig", "build_app", "run"]
