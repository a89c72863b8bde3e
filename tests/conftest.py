"""Shared test configuration: Hypothesis profiles and the nightly marker.

``FIXAR_HYPOTHESIS_PROFILE`` selects the profile: ``ci`` (default, quick) or ``nightly``
(thorough). Simulation-backed examples are slow, so deadlines are off and the too-slow health
check is suppressed in both. Tests marked ``nightly`` run in the nightly profile only: each is
thoroughness over a kind of check the quick profile keeps (a second Verilator build, a full
place and route, a benchmark's quick run).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

settings.register_profile("ci", max_examples=40, **_COMMON)
settings.register_profile("nightly", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci"))

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")


def pytest_collection_modifyitems(config, items) -> None:
    if PROFILE == "nightly":
        return
    skip = pytest.mark.skip(reason="nightly profile (FIXAR_HYPOTHESIS_PROFILE=nightly)")
    for item in items:
        if "nightly" in item.keywords:
            item.add_marker(skip)
