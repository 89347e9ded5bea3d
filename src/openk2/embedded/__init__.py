"""The embedded default model: a small K2-architecture model trained by openk2 and shipped in the
package, so that the whole system (engine, server, chat protocol, swarm) runs offline.

Modules: `profiles` (the runtime strings its training chats must match), `corpus` (the seeded
training mixture and held-out tasks), `export`, `evaluate`, `server` (a local `openk2 serve`),
`demo` (`openk2 demo` over the shipped demo workspace). Its direct tools are generic agent
tools (`agent.tools.workspace`); the terminal chat is `cli/chat.py`.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED = "embedded"
"""The model name every `--model` option accepts for the shipped model."""

SERVED_NAME = "openk2-embedded"
"""The model id `openk2 serve --model embedded` answers to (the asset directory's name)."""


def model_dir() -> Path:
    """The shipped checkpoint: config.json, model.safetensors and the tokenizer files."""
    return Path(__file__).resolve().parent / "assets" / SERVED_NAME


def resolve_model(name: str) -> str:
    """`name`, with `embedded` replaced by the shipped checkpoint's directory.

    Raises FileNotFoundError when the package was installed without the weights.
    """
    if name != EMBEDDED:
        return name
    path = model_dir()
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the embedded model's weights are missing from {path}; "
                                "rebuild them with `make embedded-model`")
    return str(path)
