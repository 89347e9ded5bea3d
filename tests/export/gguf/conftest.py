"""The embedded model written once per quant, shared by the GGUF export tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.embedded import model_dir
from openk2.export.gguf import export_gguf


@pytest.fixture(scope="session")
def embedded_gguf(tmp_path_factory: pytest.TempPathFactory):
    """quant -> path of the embedded model exported at that quant (written on first use)."""
    root = tmp_path_factory.mktemp("gguf")
    written: dict[str, Path] = {}

    def get(quant: str) -> Path:
        if quant not in written:
            written[quant] = export_gguf(model_dir(), root / f"embedded-{quant}.gguf", quant).path
        return written[quant]

    return get
