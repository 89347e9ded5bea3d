"""The K2.6 chat template as Jinja (`tokenizer.chat_template`), for llama.cpp's `--jinja`.

openk2 renders chats in Python (`openk2.tokenizer.chat.template`); runtimes that read a GGUF
need the same format as a Jinja string. The file beside this module is that string; the tests
render it with jinja2 and compare it with openk2's renderer. Without `--jinja`, llama.cpp
recognises the `<|im_assistant|>assistant<|im_middle|>` marker as its built-in kimi-k2 format.
"""

from __future__ import annotations

from importlib import resources

TEMPLATE_FILE = "k26_chat_template.jinja"


def k26_chat_template() -> str:
    """The Jinja source of the K2.6 chat template."""
    return resources.files(__package__).joinpath(TEMPLATE_FILE).read_text(encoding="utf-8")
