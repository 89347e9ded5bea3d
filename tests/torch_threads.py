"""One torch thread for a test package's tests, imported by its conftest.

The tiny models of these tests are dispatch-bound, and on the shared 2-core build machines a
second OpenMP thread mostly spins (10x slower under load).
"""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module", name="_one_torch_thread")
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
