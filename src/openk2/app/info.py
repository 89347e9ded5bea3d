"""What the page's empty state says: the model served, its size, what it is for, and example
prompts that work with it (for the embedded model: phrased like its training tasks)."""

from __future__ import annotations

from typing import Any

from openk2.embedded import SERVED_NAME
from openk2.serve.state import ServerState

EMBEDDED_PURPOSE = (
    "A small K2-architecture model trained by openk2 for one job: calling tools. It does "
    "arithmetic with the calculator, reads workspace files, looks up and stores keys, and as "
    "an orchestrator splits work across sub-agents. It is not a general chat model."
)
EMBEDDED_EXAMPLES = [
    {"text": "What is 12*7?", "mode": "tools"},
    {"text": "What is the owner in docs/atlas.txt?", "mode": "tools"},
    {"text": "What is stored under team_7?", "mode": "tools"},
    {"text": "Split these across sub-agents and report the owner in each file: docs/atlas.txt, "
             "notes/comet.txt, data/maple.txt, config/onyx.txt", "mode": "agent"},
]
GENERAL_EXAMPLES = [
    {"text": "Explain what a mixture-of-experts layer is, in three sentences.", "mode": "chat"},
    {"text": "Write a Python function that checks whether a string is a palindrome.",
     "mode": "chat"},
    {"text": "What is 1234*5678?", "mode": "tools"},
    {"text": "Compare three sorting algorithms; give each to a sub-agent.", "mode": "agent"},
]


def parameter_count(state: ServerState) -> int | None:
    """Parameters of the served model, when the engine holds a torch module."""
    model = getattr(getattr(state.engine.engine, "runner", None), "model", None)
    params = getattr(model, "parameters", None)
    return sum(p.numel() for p in params()) if callable(params) else None


def app_info(state: ServerState, tool_names: list[str], files: list[str]) -> dict[str, Any]:
    """The `/app/info` object the page builds its empty state and toggles from."""
    embedded = state.model_name == SERVED_NAME
    examples = EMBEDDED_EXAMPLES if embedded else GENERAL_EXAMPLES
    if not tool_names:  # the embedded model's swarm work needs the workspace tools too
        examples = [e for e in examples if e["mode"] == "chat"]
    return {
        "model": state.model_name,
        "parameters": parameter_count(state),
        "max_model_len": state.max_model_len,
        "embedded": embedded,
        "purpose": EMBEDDED_PURPOSE if embedded else None,
        "examples": examples,
        "tools": tool_names,
        "workspace_files": files,
        "agent_mode": True,
        "images": state.multimodal,
        "video": state.multimodal,
    }
