"""The embedded default model: a small K2-architecture model trained by openk2 and shipped in the
package, so that the whole system (engine, server, chat protocol, swarm) runs offline.

Modules: `profiles` (the runtime strings its training chats must match), `corpus` (the seeded
training mixture and held-out tasks), `export`, `evaluate`, `server` (a local `openk2 serve`),
`demo` (`openk2 demo` over the shipped demo workspace). Its direct tools are generic agent
tools (`agent.tools.workspace`); the terminal chat is `cli/chat.py`.

`embedded-vl` is its sibling that sees: the same text model fine-tuned behind a small
MoonViT-3D tower + projector (`vision/`, `make embedded-vision`), in the K2.5 layout
(`load_multimodal`). It is not shipped until a run passes its held-out bar (README); the
text-only default is untouched either way, so tool use and the demo do not change.
"""

from __future__ import annotations

from pathlib import Path

EMBEDDED = "embedded"
"""The model name every `--model` option accepts for the shipped model."""

SERVED_NAME = "openk2-embedded"
"""The model id `openk2 serve --model embedded` answers to (the asset directory's name)."""


EMBEDDED_VL = "embedded-vl"
"""The model name of the shipped multimodal sibling (images and video)."""

VL_SERVED_NAME = "openk2-embedded-vl"
"""Its model id and asset directory name."""


def model_dir() -> Path:
    """The shipped checkpoint: config.json, model.safetensors and the tokenizer files."""
    return Path(__file__).resolve().parent / "assets" / SERVED_NAME


def vision_model_dir() -> Path:
    """The shipped multimodal checkpoint (K2.5 layout: text + vision tower + projector)."""
    return Path(__file__).resolve().parent / "assets" / VL_SERVED_NAME


def resolve_model(name: str) -> str:
    """`name`, with `embedded` / `embedded-vl` replaced by the shipped checkpoint's directory.

    Raises FileNotFoundError when the package was installed without the weights.
    """
    if name not in (EMBEDDED, EMBEDDED_VL):
        return name
    path, target = ((model_dir(), "embedded-model") if name == EMBEDDED
                    else (vision_model_dir(), "embedded-vision"))
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the {name} model's weights are missing from {path}; "
                                f"rebuild them with `make {target}`")
    return str(path)
