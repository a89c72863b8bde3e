"""The demo: FixedMAC in simulation on random vectors, checked against the golden model.

``fixar-hw demo`` runs :func:`run_mac_demo` for a few formats (8-bit, FIXAR's 16-bit
activation x 32-bit weight, and full 32-bit) and prints a report: results compared with
:func:`sw_model.fixed.dot` (``==``), cycles, terms per cycle, and the latency seen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sw_model.fixed import FixedFormat, dot

from .mac import FixedMAC
from .testing import simulate_stream

__all__ = ["DEMO_CONFIGS", "DemoConfig", "DemoResult", "format_report", "run_mac_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """One MAC configuration of the demo."""

    name: str
    a_fmt: FixedFormat
    b_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: str = "half_even"
    overflow: str = "saturate"


DEMO_CONFIGS: tuple[DemoConfig, ...] = (
    DemoConfig("int8", FixedFormat(8, 7), FixedFormat(8, 7), FixedFormat(8, 7)),
    DemoConfig("fixar-act16-w32", FixedFormat(16, 12), FixedFormat(32, 24), FixedFormat(32, 24)),
    DemoConfig("full-32", FixedFormat(32, 24), FixedFormat(32, 24), FixedFormat(32, 24),
               rounding="floor"),
)


@dataclass(frozen=True)
class DemoResult:
    """Outcome of one configuration: mismatches must be 0."""

    config: DemoConfig
    vectors: int
    terms: int
    stall: float
    mismatches: int
    cycles: int
    acc_bits: int
    seconds: float


def _random_codes(rng: np.random.Generator, fmt: FixedFormat, shape) -> np.ndarray:
    """Gaussian-like values in the format's range, with a sprinkling of extreme codes."""
    x = fmt.from_float(rng.normal(0.0, 0.3 * fmt.max_value, shape))
    extremes = rng.choice([fmt.min_int, fmt.max_int, 0, -1 if fmt.signed else 1], shape)
    return np.where(rng.random(shape) < 0.05, extremes, x)


def run_mac_demo(config: DemoConfig, *, vectors: int = 100, terms: int = 64, seed: int = 0,
                 stall: float = 0.2, vcd: str | None = None) -> DemoResult:
    """Simulate ``vectors`` random dot products of ``terms`` terms each on a FixedMAC.

    The producer leaves a gap and the consumer withholds ready each with probability ``stall``.
    Results are compared with :func:`sw_model.fixed.dot` with ``==``.
    """
    rng = np.random.default_rng(seed)
    a = _random_codes(rng, config.a_fmt, (vectors, terms))
    b = _random_codes(rng, config.b_fmt, (vectors, terms))
    want = dot(a, b, config.a_fmt, config.b_fmt, config.out_fmt, config.rounding,
               config.overflow).tolist()
    mac = FixedMAC(config.a_fmt, config.b_fmt, config.out_fmt, max_terms=terms,
                   rounding=config.rounding, overflow=config.overflow)
    in_rng, out_rng = np.random.default_rng(seed + 1), np.random.default_rng(seed + 2)
    inputs = [{"a": int(a[v, k]), "b": int(b[v, k]), "last": int(k == terms - 1)}
              for v in range(vectors) for k in range(terms)]
    start = time.perf_counter()
    outputs, cycles = simulate_stream(mac, inputs, vectors,
                                      in_stall=lambda: in_rng.random() < stall,
                                      out_stall=lambda: out_rng.random() < stall, vcd=vcd)
    got = [-1 if out.overrun else out.value for out in outputs]
    seconds = time.perf_counter() - start
    mismatches = sum(g != w for g, w in zip(got, want, strict=True))
    return DemoResult(config, vectors, terms, stall, mismatches, cycles, mac.acc_shape.width,
                      seconds)


def format_report(results: Sequence[DemoResult]) -> str:
    """A plain-text report of demo results."""
    lines = [
        "FixedMAC vs golden model (sw_model.fixed.dot), bit-exact comparison",
        "stall: probability of an input gap and of an output stall in each cycle",
        "",
    ]
    header = ("config", "a x b -> out", "round/overflow", "acc bits", "vectors x terms",
              "stall", "mismatches", "cycles", "terms/cycle", "sim s")
    rows = [header]
    for r in results:
        c = r.config
        rows.append((
            c.name,
            f"{c.a_fmt.width}.{c.a_fmt.frac} x {c.b_fmt.width}.{c.b_fmt.frac} -> "
            f"{c.out_fmt.width}.{c.out_fmt.frac}",
            f"{c.rounding}/{c.overflow}", str(r.acc_bits), f"{r.vectors} x {r.terms}",
            f"{r.stall:g}", str(r.mismatches), str(r.cycles),
            f"{r.vectors * r.terms / max(r.cycles, 1):.2f}", f"{r.seconds:.1f}",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    ok = all(r.mismatches == 0 for r in results)
    lines += ["", "all results bit-exact" if ok else "MISMATCHES FOUND"]
    return "\n".join(lines)
