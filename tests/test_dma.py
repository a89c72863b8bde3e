# amaranth: UnusedElaboratable=no
"""The DMA engine against a Python model of its transfers: real on-chip memories, an external
memory behind a Wishbone slave with random stalls, wait states and errors, random command and
report backpressure; the word/beat conversions; parameter and command validation; timing."""

import os
import random
from fractions import Fraction

import pytest
from amaranth.hdl import Elaboratable, Module, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fixar_hw.sim.testing import (
    stall_pattern,
    stream_get,
    stream_monitor,
    stream_put,
    wishbone_monitor,
    wishbone_slave,
)
from fixar_hw.soc.dma import (
    DIRECTIONS,
    DMA,
    STATUS,
    beats_per_word,
    beats_to_words,
    words_to_beats,
)

from .strategies import stall_lists

PROFILE = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
MAX_EXAMPLES = {"ci": 20, "nightly": 300}.get(PROFILE, 20)


# -- pure Python ------------------------------------------------------------------------------

def widths():
    return st.one_of(st.sampled_from([1, 7, 8, 9, 16, 31, 32, 33, 64, 65]), st.integers(1, 80))


@given(widths(), st.sampled_from([8, 16, 32, 64]), st.data())
def test_words_beats_round_trip(word_width, data_width, data):
    words = data.draw(st.lists(st.integers(0, (1 << word_width) - 1), max_size=6))
    n = beats_per_word(word_width, data_width)
    beats = words_to_beats(words, word_width, data_width)
    assert len(beats) == n * len(words)
    assert all(0 <= b < 1 << data_width for b in beats)
    # little-endian: beat j of word k holds bits [dw*j, dw*(j+1))
    for k, w in enumerate(words):
        assert sum(b << (data_width * j) for j, b in enumerate(beats[k * n:(k + 1) * n])) == w
    assert beats_to_words(beats, word_width, data_width) == words
    # the top bits of a word's last beat are ignored on the way in
    junk = data.draw(st.lists(st.integers(0, (1 << data_width) - 1), min_size=len(beats),
                              max_size=len(beats)))
    got = beats_to_words(junk, word_width, data_width)
    assert got == [sum(b << (data_width * j) for j, b in enumerate(junk[k * n:(k + 1) * n]))
                   % (1 << word_width) for k in range(len(words))]


def test_words_beats_examples():
    assert beats_per_word(16, 8) == 2 and beats_per_word(17, 8) == 3 and beats_per_word(8, 32) == 1
    assert words_to_beats([0x1234, 0xABCD], 16, 8) == [0x34, 0x12, 0xCD, 0xAB]
    assert words_to_beats([0x1FFFF], 17, 8) == [0xFF, 0xFF, 0x01]
    assert beats_to_words([0xFF, 0xFF, 0xFF], 17, 8) == [0x1FFFF]
    with pytest.raises(ValueError, match=r"^words\[1\] must be in \[0, 2\*\*4\), not 16$"):
        words_to_beats([1, 16], 4, 8)
    with pytest.raises(TypeError, match=r"^words\[0\] must be an integer, not 1.0$"):
        words_to_beats([1.0], 4, 8)
    with pytest.raises(ValueError, match=r"^beats must hold a multiple of 2 bus words, not 3$"):
        beats_to_words([1, 2, 3], 16, 8)
    with pytest.raises(ValueError, match=r"^beats\[0\] must be in \[0, 2\*\*8\), not 256$"):
        beats_to_words([256], 8, 8)
    with pytest.raises(ValueError, match=r"^word_width must be at least 1, not 0$"):
        beats_per_word(0, 8)


MEMS = [("w", 32, 16, "rw"), ("prog", 20, 5, "w"), ("act", 8, 3, "r")]


def test_parameters_and_layouts():
    dma = DMA(addr_width=10, data_width=16, memories=MEMS, max_outstanding=3)
    assert (dma.addr_width, dma.data_width, dma.max_outstanding) == (10, 16, 3)
    assert dma.memories == tuple(MEMS)
    assert (dma.mem_width, dma.local_width, dma.count_width, dma.word_width) == (2, 4, 5, 32)
    assert dict(dma.command_layout.members) == {"dir": 1, "mem": 2, "local": 4, "count": 5,
                                                "ext": 10, "stride": 10}
    assert dict(dma.done_layout.members) == {"status": 2, "words": 5, "addr": 10}
    assert [dma.beats(n) for n in ("w", "prog", "act")] == [2, 2, 1]
    assert dma.beats(1) == 2
    assert dma.command("in", "prog", 1, 4, 1000) == {
        "dir": 0, "mem": 1, "local": 1, "count": 4, "ext": 1000, "stride": 2}
    assert dma.command(1, 2, 0, 0, 5, stride=0)["stride"] == 0


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    (dict(addr_width="8"), TypeError, r"^addr_width must be an integer, not '8'$"),
    (dict(addr_width=0), ValueError, r"^addr_width must be from 1 to 64, not 0$"),
    (dict(data_width=12), ValueError, r"^data_width must be 8, 16, 32 or 64, not 12$"),
    (dict(data_width=True), TypeError, r"^data_width must be an integer, not True$"),
    (dict(observe=2), TypeError, r"^observe must be a bool, not 2$"),
    (dict(memories="w"), TypeError, r"^memories must be a sequence of .*, not 'w'$"),
    (dict(memories=[]), ValueError, r"^memories must name at least one memory, not \[\]$"),
    (dict(memories=[("a", 8, 4)]), TypeError, r"^memories\[0\] must be a \(name, word_width, "
     r"depth, access\) tuple, not \('a', 8, 4\)$"),
    (dict(memories=[("a", 8, 4, "rw"), ("a", 8, 4, "r")]), ValueError,
     r"^memories\[1\] name 'a' is used twice$"),
    (dict(memories=[("a", 0, 4, "rw")]), ValueError,
     r"^memories\[0\] word_width must be at least 1, not 0$"),
    (dict(memories=[("a", 8, 4.0, "rw")]), TypeError,
     r"^memories\[0\] depth must be an integer, not 4.0$"),
    (dict(memories=[("a", 8, 4, "x")]), ValueError,
     r"^memories\[0\] access must be 'rw', 'w' or 'r', not 'x'$"),
    (dict(memories=[(3, 8, 4, "rw")]), TypeError,
     r"^memories\[0\] name must be a non-empty string, not 3$"),
    (dict(max_outstanding=0), ValueError, r"^max_outstanding must be from 1 to 256, not 0$"),
    (dict(max_outstanding=None), TypeError, r"^max_outstanding must be an integer, not None$"),
])
def test_constructor_errors(kwargs, exc, message):
    args = dict(addr_width=8, data_width=8, memories=MEMS) | kwargs
    with pytest.raises(exc, match=message):
        DMA(**args)


@pytest.mark.parametrize(("args", "kwargs", "exc", "message"), [
    (("sideways", 0, 0, 1, 0), {}, ValueError,
     r"^dir must be 'in', 'out', 0 or 1, not 'sideways'$"),
    (("in", "nope", 0, 1, 0), {}, ValueError, r"^mem must be one of 'w', 'prog', 'act' or a code"),
    (("in", 3, 0, 1, 0), {}, ValueError, r"^mem must be a code in \[0, 2\], not 3$"),
    (("in", 1.5, 0, 1, 0), {}, TypeError, r"^mem must be a memory name or code, not 1.5$"),
    (("out", "prog", 0, 1, 0), {}, ValueError,
     r"^dir 'out' is not allowed on memory 'prog' \(access 'w'\)$"),
    (("in", "act", 0, 1, 0), {}, ValueError,
     r"^dir 'in' is not allowed on memory 'act' \(access 'r'\)$"),
    (("in", "w", -1, 1, 0), {}, ValueError, r"^local must be non-negative, not -1$"),
    (("in", "w", 0, "1", 0), {}, TypeError, r"^count must be an integer, not '1'$"),
    (("in", "prog", 3, 3, 0), {}, ValueError,
     r"^local \+ count must be at most the depth of 'prog' \(5\), not 3 \+ 3$"),
    (("in", "w", 0, 1, 1 << 8), {}, ValueError, r"^ext must be in \[0, 2\*\*8\), not 256$"),
    (("in", "w", 0, 1, 0), {"stride": -1}, ValueError,
     r"^stride must be in \[0, 2\*\*8\), not -1$"),
])
def test_command_errors(args, kwargs, exc, message):
    dma = DMA(addr_width=8, data_width=16, memories=MEMS)
    with pytest.raises(exc, match=message):
        dma.command(*args, **kwargs)


# -- simulation -------------------------------------------------------------------------------

class Chip(Elaboratable):
    """The DMA with real ``amaranth.lib.memory`` memories behind its ``rd``/``wr`` ports."""

    def __init__(self, dma: DMA, inits):
        self.dma = dma
        self.mems = [memory.Memory(shape=unsigned(width), depth=depth, init=init)
                     for (_, width, depth, _), init in zip(dma.memories, inits, strict=True)]

    def elaborate(self, platform):
        m = Module()
        dma = self.dma
        m.submodules.dma = dma
        for i, mem in enumerate(self.mems):
            m.submodules[f"mem{i}"] = mem
            rp, wp = mem.read_port(), mem.write_port()
            sel = dma.mem == i
            m.d.comb += [rp.addr.eq(dma.rd.addr), rp.en.eq(dma.rd.en & sel),
                         wp.addr.eq(dma.wr.addr), wp.data.eq(dma.wr.data),
                         wp.en.eq(dma.wr.en & sel)]
            with m.If(sel):
                m.d.comb += dma.rd.data.eq(rp.data)  # zero-extended
        return m


def mem_stable_monitor(dma):
    """``mem`` holds while ``busy``; ``rd``/``wr`` are used only while ``busy``."""

    async def monitor(ctx):
        prev = None
        async for _, _, busy, mem, rd_en, wr_en in ctx.tick().sample(
                dma.busy, dma.mem, dma.rd.en, dma.wr.en):
            assert busy or not (rd_en or wr_en), "memory port used while idle"
            assert prev is None or not busy or mem == prev, "mem changed during a command"
            prev = mem if busy else None

    return monitor


def model(dma: DMA, cmd: dict, onchip: list[list[int]], ext: dict, bad: set, log_len: int):
    """Apply ``cmd`` to the model memories; returns the report and the expected requests.

    ``log_len`` is the number of requests the slave accepted for this command (after an
    error, a pipelined master may have had later requests accepted; they are performed).
    """
    aw = dma.addr_width
    dw = dma.data_width
    code = cmd["mem"]
    if code >= len(dma.memories):
        return (STATUS["bad_command"], 0, 0), []
    _, width, depth, access = dma.memories[code]
    direction = ("in", "out")[cmd["dir"]]
    if direction not in {"rw": "in out", "w": "in", "r": "out"}[access] \
            or cmd["local"] + cmd["count"] > depth:
        return (STATUS["bad_command"], 0, 0), []
    n = beats_per_word(width, dw)
    addrs = [(cmd["ext"] + k * cmd["stride"] + j) % (1 << aw)
             for k in range(cmd["count"]) for j in range(n)]
    failing = next((i for i, a in enumerate(addrs) if a in bad), None)
    mem = onchip[code]
    if direction == "in":
        beats = [ext.get(a, 0) for a in addrs]
        words = beats_to_words(beats, width, dw)
        # the slave logs an errored read with data 0
        reqs = [(False, a, b if a not in bad else 0, a not in bad)
                for a, b in zip(addrs, beats, strict=True)]
    else:
        words = mem[cmd["local"]:cmd["local"] + cmd["count"]]
        beats = words_to_beats(words, width, dw)
        reqs = [(True, a, b, a not in bad) for a, b in zip(addrs, beats, strict=True)]
    committed = cmd["count"] if failing is None else failing // n
    if direction == "in":
        mem[cmd["local"]:cmd["local"] + committed] = words[:committed]
    else:
        for _we, a, b, ok in reqs[:log_len]:
            if ok:
                ext[a] = b
    if failing is None:
        return (STATUS["ok"], committed, 0), reqs
    return (STATUS["bus_error"], committed, addrs[failing]), reqs


def run(dma, inits, ext_init, cmds, *, bad=frozenset(), slave_stalls=(), waits=(),
        cmd_stalls=(), done_stalls=()):
    """Run ``cmds`` through a :class:`Chip`; returns reports, per-command logs, memories."""
    chip = Chip(dma, inits)
    ext = dict(ext_init)
    log = []
    reports = []
    boundaries = []
    final = []
    waits_it = iter(list(waits))
    bus_mon = wishbone_monitor(dma.bus)

    async def host(ctx):
        stall = stall_pattern(cmd_stalls)
        for cmd in cmds:
            await stream_put(ctx, dma.cmd, cmd, stall=stall)

    async def sink(ctx):
        stall = stall_pattern(done_stalls)
        for _ in cmds:
            p = await stream_get(ctx, dma.done, stall=stall)
            reports.append((int(p.status), int(p.words), int(p.addr)))
            boundaries.append(len(log))
        await ctx.tick()
        await ctx.tick()
        assert not ctx.get(dma.busy)
        for mem in chip.mems:
            final.append([ctx.get(mem.data[i]) for i in range(mem.depth)])

    sim = Simulator(chip)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(sink)
    sim.add_testbench(wishbone_slave(dma.bus, ext, stall=stall_pattern(slave_stalls),
                                     wait=lambda: next(waits_it, 0),
                                     error=lambda adr, we: adr in bad, log=log),
                      background=True)
    sim.add_process(stream_monitor(dma.done, name="done"))
    sim.add_process(bus_mon)
    sim.add_process(mem_stable_monitor(dma))
    sim.run()
    assert bus_mon.peak <= dma.max_outstanding
    logs = [log[a:b] for a, b in zip([0, *boundaries[:-1]], boundaries, strict=True)]
    return reports, logs, final, ext


@st.composite
def configs(draw):
    dw = draw(st.sampled_from([8, 16, 32]))
    aw = draw(st.integers(3, 8))
    n = draw(st.integers(1, 3))
    mems = []
    for i in range(n):
        width = draw(st.one_of(st.sampled_from([1, dw - 1, dw, dw + 1, 2 * dw]),
                               st.integers(1, 3 * dw)))
        mems.append((f"m{i}", width, draw(st.integers(1, 6)),
                     draw(st.sampled_from(["rw", "rw", "w", "r"]))))
    mo = draw(st.integers(1, 4))
    return DMA(addr_width=aw, data_width=dw, memories=mems, max_outstanding=mo)


@st.composite
def commands(draw, dma):
    """Valid commands mostly, any field values sometimes (bad commands)."""
    mask = (1 << dma.addr_width) - 1
    ext = draw(st.one_of(st.sampled_from([0, mask]), st.integers(0, mask)))
    stride = draw(st.one_of(st.none(), st.sampled_from([0, 1, mask]), st.integers(0, mask)))
    if draw(st.integers(0, 4)) == 0:
        c = {"dir": draw(st.integers(0, 1)),
             "mem": draw(st.integers(0, (1 << dma.mem_width) - 1)),
             "local": draw(st.integers(0, (1 << dma.local_width) - 1)),
             "count": draw(st.integers(0, (1 << dma.count_width) - 1)),
             "ext": ext, "stride": stride if stride is not None else 1}
        return c
    code = draw(st.integers(0, len(dma.memories) - 1))
    _, _, depth, access = dma.memories[code]
    d = draw(st.sampled_from({"rw": ["in", "out"], "w": ["in"], "r": ["out"]}[access]))
    if draw(st.integers(0, 9)) == 0:  # a no-op, possibly at the end of the memory
        local, count = draw(st.integers(0, depth)), 0
    else:
        local = draw(st.integers(0, depth - 1))
        count = draw(st.integers(1, depth - local))
    return dma.command(d, code, local, count, ext, stride)


def check(dma, inits, ext_init, cmds, bad, reports, logs, final, ext_final, events=False):
    onchip = [list(x) for x in inits]
    ext = dict(ext_init)
    for cmd, report, got_log in zip(cmds, reports, logs, strict=True):
        want, reqs = model(dma, cmd, onchip, ext, bad, len(got_log))
        assert report == want, (cmd, report, want)
        status, _, _ = want
        if events:
            event(f"status {status}, {'empty' if cmd['count'] == 0 else 'words'}")
        if status == STATUS["bad_command"] or cmd["count"] == 0:
            assert got_log == []
            continue
        if status == STATUS["ok"]:
            assert got_log == reqs
        else:
            failing = next(i for i, r in enumerate(reqs) if not r[3])
            # the failing request and at most max_outstanding more were accepted, in order
            assert failing + 1 <= len(got_log) <= failing + 1 + dma.max_outstanding
            assert got_log == reqs[:len(got_log)]
    assert final == onchip
    assert {a: v for a, v in ext_final.items() if v} == {a: v for a, v in ext.items() if v}


@settings(max_examples=MAX_EXAMPLES)
@given(st.data(), stall_lists(80), stall_lists(80), stall_lists(20), stall_lists(20))
def test_transfers_match_model(data, slave_stalls, waits_mask, cmd_stalls, done_stalls):
    dma = data.draw(configs())
    inits = [data.draw(st.lists(st.integers(0, (1 << w) - 1), min_size=d, max_size=d))
             for _, w, d, _ in dma.memories]
    rng = random.Random(data.draw(st.integers(0, 1 << 32)))
    ext_init = {a: rng.getrandbits(dma.data_width) for a in range(1 << dma.addr_width)}
    cmds = data.draw(st.lists(commands(dma), min_size=1, max_size=4))
    waits = [data.draw(st.integers(0, 3)) if w else 0 for w in waits_mask]
    reports, logs, final, ext_final = run(dma, inits, ext_init, cmds, slave_stalls=slave_stalls,
                                          waits=waits, cmd_stalls=cmd_stalls,
                                          done_stalls=done_stalls)
    check(dma, inits, ext_init, cmds, frozenset(), reports, logs, final, ext_final,
          events=True)


@settings(max_examples=MAX_EXAMPLES)
@given(st.data(), stall_lists(80), stall_lists(80), stall_lists(20), stall_lists(20))
def test_bus_errors(data, slave_stalls, waits_mask, cmd_stalls, done_stalls):
    dma = data.draw(configs())
    inits = [data.draw(st.lists(st.integers(0, (1 << w) - 1), min_size=d, max_size=d))
             for _, w, d, _ in dma.memories]
    rng = random.Random(data.draw(st.integers(0, 1 << 32)))
    ext_init = {a: rng.getrandbits(dma.data_width) for a in range(1 << dma.addr_width)}
    cmds = data.draw(st.lists(commands(dma), min_size=1, max_size=4))
    # bad addresses: mostly ones the commands use
    used = sorted({(c["ext"] + k * c["stride"] + j) % (1 << dma.addr_width)
                   for c in cmds if c["mem"] < len(dma.memories)
                   for k in range(c["count"]) for j in range(dma.beats(c["mem"]))})
    anywhere = st.integers(0, (1 << dma.addr_width) - 1)
    bad = frozenset(data.draw(st.lists(st.sampled_from(used) if used else anywhere,
                                       max_size=2))
                    + data.draw(st.lists(anywhere, max_size=2)))
    waits = [data.draw(st.integers(0, 3)) if w else 0 for w in waits_mask]
    reports, logs, final, ext_final = run(dma, inits, ext_init, cmds, bad=bad,
                                          slave_stalls=slave_stalls, waits=waits,
                                          cmd_stalls=cmd_stalls, done_stalls=done_stalls)
    check(dma, inits, ext_init, cmds, bad, reports, logs, final, ext_final, events=True)


def test_error_mid_word_commits_only_whole_words():
    """A 3-beat word fails on its middle beat: the two words before it are in memory."""
    dma = DMA(addr_width=8, data_width=8, memories=[("a", 24, 6, "rw")], max_outstanding=3)
    inits = [[0xAAAAAA] * 6]
    ext_init = {a: a for a in range(256)}
    cmds = [dma.command("in", "a", 1, 5, 16)]
    bad = frozenset({16 + 2 * 3 + 1})
    reports, logs, final, ext_final = run(dma, inits, ext_init, cmds, bad=bad)
    assert reports == [(STATUS["bus_error"], 2, 23)]
    assert final == [[0xAAAAAA, 0x121110, 0x151413, 0xAAAAAA, 0xAAAAAA, 0xAAAAAA]]
    check(dma, inits, ext_init, cmds, bad, reports, logs, final, ext_final)


def test_bad_commands_touch_nothing():
    dma = DMA(addr_width=6, data_width=8, memories=[("a", 16, 4, "rw"), ("p", 8, 3, "w")],
              max_outstanding=2)
    inits = [[1, 2, 3, 4], [5, 6, 7]]
    ext_init = {a: 0x40 + a for a in range(64)}
    cmds = [
        {"dir": DIRECTIONS["out"], "mem": 1, "local": 0, "count": 1, "ext": 0, "stride": 1},
        {"dir": 0, "mem": 0, "local": 3, "count": 2, "ext": 0, "stride": 2},
        {"dir": 0, "mem": 1, "local": 4 - 1, "count": 1, "ext": 0, "stride": 1},
        {"dir": 0, "mem": 1, "local": 3, "count": 0, "ext": 0, "stride": 1},  # no-op: ok
    ]
    reports, logs, final, ext_final = run(dma, inits, ext_init, cmds)
    assert reports == [(2, 0, 0), (2, 0, 0), (2, 0, 0), (0, 0, 0)]
    assert logs == [[], [], [], []]
    assert final == inits and ext_final == ext_init


def cycles_to_done(dma, inits, cmd, wait=0):
    """Cycles from the command transfer to ``done.valid`` (the transfer cycle is 0), with a
    slave that never stalls and answers ``wait`` cycles late."""
    chip = Chip(dma, inits)
    cycles = []

    async def host(ctx):
        await stream_put(ctx, dma.cmd, cmd)
        k = 1  # now in the cycle after the transfer
        while not ctx.get(dma.done.valid):
            await ctx.tick()
            k += 1
        cycles.append(k)
        ctx.set(dma.done.ready, 1)
        await ctx.tick()

    sim = Simulator(chip)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(wishbone_slave(dma.bus, {}, wait=lambda: wait), background=True)
    sim.run()
    return cycles[0]


@pytest.mark.parametrize(("mo", "direction"), [(1, "in"), (1, "out"), (2, "in"), (2, "out"),
                                               (4, "in")])
def test_cycles_without_wait_states(mo, direction):
    """``done.valid`` rises N + 3 cycles after the command transfer (2N + 2 if
    max_outstanding is 1) for N bus words, one more for "out", as the docstring states."""
    dma = DMA(addr_width=8, data_width=8, memories=[("a", 16, 8, "rw")], max_outstanding=mo)
    count = 5
    n = count * dma.beats("a")
    got = cycles_to_done(dma, [list(range(8))], dma.command(direction, "a", 2, count, 7))
    assert got == (n + 3 if mo >= 2 else 2 * n + 2) + (direction == "out")
    bad = {"dir": 1, "mem": 0, "local": 7, "count": 2, "ext": 0, "stride": 0}
    assert cycles_to_done(dma, [list(range(8))], bad) == 2
    assert cycles_to_done(dma, [list(range(8))], dma.command(direction, "a", 8, 0, 0)) == 2


@pytest.mark.parametrize(("mo", "wait"), [(1, 0), (2, 1), (1, 2), (4, 3), (3, 1), (2, 2)])
def test_steady_throughput(mo, wait):
    """32 more bus words take 32 / min(1, max_outstanding / (2 + wait)) more cycles."""
    dma = DMA(addr_width=8, data_width=8, memories=[("a", 16, 64, "rw")], max_outstanding=mo)
    inits = [list(range(64))]
    for direction in ("in", "out"):
        short = cycles_to_done(dma, inits, dma.command(direction, "a", 0, 16, 3), wait)
        long = cycles_to_done(dma, inits, dma.command(direction, "a", 0, 32, 3), wait)
        assert long - short == 32 * max(Fraction(1), Fraction(2 + wait, mo))
