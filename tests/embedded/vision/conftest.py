"""Vision tests run torch on one thread (see `torch_threads.py`)."""

from torch_threads import one_torch_thread  # noqa: F401  (autouse: one torch thread)
