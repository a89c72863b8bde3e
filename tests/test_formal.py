"""Every registered SymbiYosys proof, run by the test suite."""

import os

import pytest

from fixar_hw.formal import jobs, run_job, select

JOBS = jobs()
NIGHTLY = os.environ.get("FIXAR_HYPOTHESIS_PROFILE") == "nightly"


@pytest.mark.formal
@pytest.mark.parametrize("job", JOBS, ids=[j.name for j in JOBS])
def test_proof(job):
    if job.slow and not NIGHTLY:
        pytest.skip("slow proof: runs with FIXAR_HYPOTHESIS_PROFILE=nightly and in fixar-hw prove")
    result = run_job(job, timeout=900)
    assert result.ok, (
        f"{job.name}: {result.status}, expected {job.expect}; files kept in {result.workdir}\n"
        + result.log[-3000:])


def test_select():
    assert [j.name for j in select(["mac.cover"])] == ["mac.cover.s4xu4_n3"]
    assert select(["mac.cover.s4xu4_n3", "mac.cover"]) == select(["mac.cover"])
    assert len(select()) == len(JOBS)
    with pytest.raises(ValueError, match=r"^no proof matches 'nope'; groups are: "):
        select(["nope"])


def test_every_group_has_a_cover_and_a_failing_mutant():
    """The flow is only trusted if covers are reachable and a broken design fails."""
    names = [j.name for j in JOBS]
    assert any(n.startswith("mac.cover.") for n in names)
    assert any(j.expect == "FAIL" for j in JOBS)


def test_a_harness_that_does_not_build_is_an_error_not_a_crash():
    from fixar_hw.formal import ProofJob

    def broken():
        raise RuntimeError("harness bug")

    result = run_job(ProofJob("broken", "", broken, "prove", 1))
    assert result.status == "ERROR" and not result.ok
    assert "RuntimeError: harness bug" in result.log
