"""Reading PEFT adapter folders: a run directory given instead of its adapter is pointed at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from openk2.model.peft_lora import CONFIG_FILE, read_peft_config


@pytest.mark.parametrize("given", ["run", "run/final"])
def test_a_run_or_its_final_model_points_at_the_adapter_inside(tmp_path: Path, given: str) -> None:
    adapter = tmp_path / "run" / "final" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / CONFIG_FILE).write_text('{"peft_type": "LORA"}')
    with pytest.raises(FileNotFoundError, match=f"the adapter of this run is {adapter}"):
        read_peft_config(tmp_path / given)


def test_a_folder_with_no_adapter_anywhere_gets_no_hint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no PEFT adapter config$"):
        read_peft_config(tmp_path)
