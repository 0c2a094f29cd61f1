"""Hypothesis profiles for the property tests.

A normal run keeps every property test's example count small (each test passes its own count
through :func:`examples`), so that the suite stays quick. ``--hypothesis-profile=thorough`` runs
them all with thousands of examples::

    python -m pytest tests/test_fuzz.py tests/test_source.py tests/test_expr.py --hypothesis-profile=thorough

(``thorough`` does not use Hypothesis's example database, so that its runs are independent.)
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

THOROUGH = 3000  # examples per property under the thorough profile (unless a test asks for fewer)

settings.register_profile(
    "thorough",
    max_examples=THOROUGH,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def examples(normal: int, thorough: int = THOROUGH) -> int:
    """How many examples a property test runs: ``normal`` in a default run, ``thorough`` under the
    thorough profile (a test whose examples are slow, such as building networks, asks for fewer)."""
    return thorough if settings.get_current_profile_name() == "thorough" else normal


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the suite's forwards are small, and on a shared 2-core machine
    they are dominated by thread hand-offs. The previous count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
