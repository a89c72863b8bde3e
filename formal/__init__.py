"""SymbiYosys property harnesses and the proof runner (installed as ``fixar_hw.formal``).

:func:`jobs` lists every registered proof; ``fixar-hw prove [NAME ...]`` and the test suite
run them. Each harness module documents exactly what its proofs cover.
"""

from __future__ import annotations

from fixar_hw.formal.runner import ProofJob, ProofResult, format_table, run_job, run_jobs

__all__ = ["ProofJob", "ProofResult", "format_table", "jobs", "run_job", "run_jobs", "select"]


def jobs() -> list[ProofJob]:
    """Every registered proof job, in a stable order."""
    from fixar_hw.formal.arith import activation, mac, pe, prng, row_unit, sp2
    from fixar_hw.formal.soc import bridges, csr, dma, soc
    from fixar_hw.formal.train import aap, scheduler, sequencer, update, vector

    return [*mac.JOBS, *sp2.JOBS, *row_unit.JOBS, *pe.JOBS, *activation.JOBS, *aap.JOBS,
            *prng.JOBS, *update.JOBS, *vector.JOBS, *scheduler.JOBS, *sequencer.JOBS,
            *bridges.JOBS, *csr.JOBS, *dma.JOBS, *soc.JOBS]


def select(patterns: list[str] | tuple[str, ...] = ()) -> list[ProofJob]:
    """Jobs whose name equals a pattern or starts with ``pattern + "."`` (all if none given).

    Raises
    ------
    ValueError
        If a pattern matches no job.
    """
    all_jobs = jobs()
    if not patterns:
        return all_jobs
    chosen = []
    for pattern in patterns:
        hits = [j for j in all_jobs if j.name == pattern or j.name.startswith(pattern + ".")]
        if not hits:
            names = ", ".join(sorted({j.name.rsplit(".", 1)[0] for j in all_jobs}))
            raise ValueError(f"no proof matches {pattern!r}; groups are: {names}")
        chosen.extend(j for j in hits if j not in chosen)
    return chosen
