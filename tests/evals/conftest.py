"""Fixtures: fake endpoints (127.0.0.1, own thread) built from the suites' ideal answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fake_endpoint import FakeEndpoint, Profile, oracle


@pytest.fixture
def fake_endpoint() -> Iterator[Callable[..., FakeEndpoint]]:
    """Factory: `fake_endpoint(suites, n, **profile)`; servers stop after the test."""
    started: list[FakeEndpoint] = []

    def make(suites: list[str], n: int, seed: int = 0, **profile: object) -> FakeEndpoint:
        fake = FakeEndpoint(oracle(suites, n, seed), Profile(**profile))  # type: ignore[arg-type]
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()
