"""One dtype vocabulary: canonical torch/HF names; the old short spellings warn, others fail."""

from __future__ import annotations

import warnings

import pytest
import torch

from openk2.model.dtypes import DEPRECATED_ALIASES, DTYPE_NAMES, canonical_dtype, torch_dtype


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_canonical_names_pass_silently(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert canonical_dtype(name) == name
        assert torch_dtype(name) == getattr(torch, name)


@pytest.mark.parametrize(("old", "new"), DEPRECATED_ALIASES.items())
def test_old_spellings_are_accepted_with_a_deprecation_warning(old: str, new: str) -> None:
    with pytest.warns(FutureWarning, match=f"--dtype '{old}' is deprecated; write '{new}'"):
        assert torch_dtype(old, what="--dtype") == getattr(torch, new)


def test_unknown_or_unsupported_names_list_the_choices() -> None:
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16, float16, got"):
        canonical_dtype("int8")
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, got 'f"):
        canonical_dtype("float16", what="precision", allowed=("float32", "bfloat16"))
