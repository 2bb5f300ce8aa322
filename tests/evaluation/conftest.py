"""Fixtures of the evaluation tests that talk to real scorer children (bubblewrap where it works)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from evaluation.sandbox.launch import ScorerLimits, bubblewrap_problem, require_sandbox
from evaluation.sandbox.scorer import ScorerCache

SANDBOX_LIMITS = ScorerLimits(probe_seconds=20, min_batch_seconds=10, batch_factor=5, memory_mb=4096, processes=64)
needs_sandbox = pytest.mark.skipif(bool(bubblewrap_problem()) and not require_sandbox(),
                                   reason=f"no sandbox here: {bubblewrap_problem()}")


@pytest.fixture(scope="module")
def scorers() -> Iterator[ScorerCache]:
    """One cache of scorer children per test module, closed after it."""
    cache = ScorerCache(SANDBOX_LIMITS, wire=["models_zoo.registry"])
    yield cache
    cache.close()
