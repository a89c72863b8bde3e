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


#: Modules holding the longest tests (whole cores in Amaranth's simulator, synthesis, long
#: proofs), in the order they start: the parallel workers then end the run on short tests
#: instead of one worker waiting for the other's last long one. Each module stays whole, so
#: module-scoped fixtures are made once per worker. ``test_sweep`` follows ``test_build``: its
#: real evaluation reads the synthesis that ``test_build`` makes from the build cache (run at
#: the same time on the other worker, it waits for it).
FIRST = ("test_core.py", "test_soc.py", "test_ddpg_cli.py", "test_engine_hw.py",
         "test_build.py", "test_sweep.py", "test_demo.py", "test_waveforms.py",
         "test_formal.py", "test_search_cli.py", "test_prng_hw.py")


def _start_rank(item) -> int:
    name = item.path.name
    return FIRST.index(name) if name in FIRST else len(FIRST)


def pytest_collection_modifyitems(config, items) -> None:
    items.sort(key=_start_rank)
    if PROFILE == "nightly":
        return
    skip = pytest.mark.skip(reason="nightly profile (FIXAR_HYPOTHESIS_PROFILE=nightly)")
    for item in items:
        if "nightly" in item.keywords:
            item.add_marker(skip)
