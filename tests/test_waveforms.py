"""Waveforms on request and mismatch reports that say where to look in them.

* :class:`~fixar_hw.sim.transport.SimTransport` writes a VCD file (``vcd=``) of the whole core
  for its whole run, and records the cycle of the DMA's last write to every memory word;
  :meth:`~fixar_hw.host.driver.FixarDriver.state_addresses` names the word each value of the
  state is read from, and the VCD shows that word written at that cycle's clock edge;
* :class:`~fixar_hw.sim.core_verilator.VerilatorTransport` writes an FST file (``trace=``)
  with a tracing build of its own, and records write cycles the same way;
* ``fixar-hw train --backend sim --vcd`` writes the VCD of the run; ``--vcd``/``--trace`` with
  the wrong simulator, or to a path that cannot be written, fail before anything runs, naming
  the path;
* a hardware value that differs from the golden model is reported with its name, both values
  and the cycle its word was written (:func:`fixar_hw.apps.demo.compare`).
"""

from __future__ import annotations

import numpy as np
import pytest

import fixar_hw.apps.demo as demo
import fixar_hw.apps.train as train_app
from fixar_hw.apps.cli import main
from fixar_hw.apps.demo import compare, demo_settings
from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import FixarDriver
from fixar_hw.sim.core_verilator import VerilatorTransport
from fixar_hw.sim.transport import SimTransport
from sw_model.arch import engine as en
from sw_model.rl.ddpg import DDPGAgent

from .test_core import fill, small

#: Amaranth's VCD counts femtoseconds; one clock period is 10 ns.
FS_PER_NS = 1_000_000


def read_vcd(path, names: set[str]) -> tuple[dict[str, list[tuple[int, int]]], set[str]]:
    """The value changes ``(time in fs, value)`` of the signals ``names`` of the core's top
    scope, and the names of every signal of that scope (a small reader of the VCD that
    Amaranth writes: its names, like ``$signature__addr``, are beyond pyvcd's reader)."""
    changes: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    ids: dict[str, str] = {}
    scope: list[str] = []
    top: set[str] = set()
    now = 0
    with open(path) as f:
        words = iter(f.read().split())
    for w in words:
        if w == "$scope":
            scope.append([next(words), next(words)][1])
        elif w == "$upscope":
            scope.pop()
        elif w == "$var":
            _, _, code, name = next(words), next(words), next(words), next(words)
            if scope == ["bench", "top"]:
                top.add(name)
                if name in names:
                    ids[code] = name
        elif w.startswith("#"):
            now = int(w[1:])
        elif w.startswith("b"):
            code = next(words)
            if code in ids:
                bits = w[1:]
                changes[ids[code]].append((now, int(bits, 2) if set(bits) <= {"0", "1"} else 0))
        elif w[0] in "01xz" and w[1:] in ids:
            changes[ids[w[1:]]].append((now, int(w[0]) if w[0] in "01" else 0))
    return changes, top


def value_before(changes: list[tuple[int, int]], time: int) -> int:
    """The value a signal held just before ``time`` (what a clock edge at ``time`` samples)."""
    value = 0
    for t, v in changes:
        if t >= time:
            break
        value = v
    return value


def loaded_driver(transport, config) -> tuple[FixarDriver, DDPGAgent]:
    drv = FixarDriver(transport, config)
    agent = DDPGAgent(config.engine.ddpg, 3, 1, [-2], [2])
    drv.load_state(en.load_state(config.engine, agent.weights, agent.targets, agent.opt))
    return drv, agent


def word(value: int) -> int:
    return int(value) & 0xFFFFFFFF


# --- Amaranth's simulator: VCD and write cycles ----------------------------------------------

def test_sim_transport_vcd_shows_each_read_back_word_written_at_its_cycle(tmp_path):
    config = small(kind="iterative")  # no update pass: the cheaper unit to simulate
    path = tmp_path / "core.vcd"
    transport = SimTransport(config, vcd=path)
    drv, agent = loaded_driver(transport, config)
    weights, _, _ = drv.read_state()
    where, _, opt_where = drv.state_addresses()
    cycles = transport.cycles
    transport.close()
    with pytest.raises(RuntimeError, match=r"^the SimTransport is closed$"):
        drv.read("STATUS")

    # every value is read from the word the driver names, and the DMA wrote it last
    written, values_at = {}, {}
    for net in weights:
        for key, values in weights[net].items():
            np.testing.assert_array_equal(values, agent.weights[net][key])
            for value, addr in zip(values.ravel(), where[net][key].ravel(), strict=True):
                assert transport.memory[int(addr)] == word(value)
                written[int(addr)] = transport.write_cycle(int(addr))
                values_at[int(addr)] = word(value)
    assert set(opt_where.m) == {"actor", "critic"}
    assert all(c is not None and 0 < c <= cycles for c in written.values())
    transport.mem_write(min(written), [7])  # the host's own write: no DMA cycle any more
    assert transport.write_cycle(min(written)) is None

    signals = {"clk", "dma__cyc", "dma__stb", "dma__we", "dma__adr", "dma__dat_w"}
    changes, names = read_vcd(path, signals)
    assert signals | {"csr__adr", "irq"} <= names
    rising = [t for t, v in changes["clk"] if v == 1]
    assert len(rising) >= cycles
    assert rising[:2] == [5 * FS_PER_NS, 15 * FS_PER_NS]  # edge N at 10 N - 5 ns
    # the bus at the edge of a word's write cycle carries the write of that word
    for addr, cycle in list(written.items())[:: max(1, len(written) // 16)]:
        edge = (10 * cycle - 5) * FS_PER_NS
        bus = {n: value_before(changes[f"dma__{n}"], edge)
               for n in ("cyc", "stb", "we", "adr", "dat_w")}
        assert (bus["cyc"], bus["stb"], bus["we"], bus["adr"]) == (1, 1, 1, addr), (addr, cycle)
        assert bus["dat_w"] == values_at[addr]


def test_sim_transport_checks_its_vcd_path(tmp_path):
    with pytest.raises(TypeError, match=r"^vcd must be a path, not 3$"):
        SimTransport(small(), vcd=3)
    with pytest.raises(FileNotFoundError):
        SimTransport(small(), vcd=tmp_path / "missing" / "core.vcd")


# --- the command line ------------------------------------------------------------------------

def test_train_cli_writes_the_vcd_of_the_run(tmp_path, monkeypatch, capsys):
    """Two training steps and an action on the core in Amaranth's simulator, with a VCD."""
    runs = []
    real_close = train_app.CoreAgentFactory.close

    def close(factory):
        runs.extend(t.cycles for t in factory.transports)
        real_close(factory)

    monkeypatch.setattr(train_app.CoreAgentFactory, "close", close)
    vcd = tmp_path / "waves" / "train.vcd"  # the folder is made
    argv = ["train", "--precision", "fixed", "--hidden", "2", "--batch-size", "2", "--steps",
            "200", "--warmup", "199", "--eval-episodes", "0", "--no-progress", "--backend",
            "sim", "--core-size", "2", "--core-cores", "1", "--core-update-kind", "iterative",
            "--vcd", str(vcd), "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 episodes, 2 training steps" in out
    assert f"wrote the core's waveform to {vcd}" in out
    assert len(runs) == 1
    changes, names = read_vcd(vcd, {"clk"})
    assert {"clk", "rst", "irq", "dma__adr", "csr__dat_r"} <= names
    assert len([t for t, v in changes["clk"] if v == 1]) >= runs[0] > 1000


def _no_run(*args, **kwargs):
    raise AssertionError("the run started")


@pytest.mark.parametrize("command", ["demo", "train"])
def test_unwritable_waveform_paths_fail_before_the_run(tmp_path, monkeypatch, capsys, command):
    monkeypatch.setattr(demo, "run_demo", _no_run)
    monkeypatch.setattr(train_app, "run_training", _no_run)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    head = ["demo", "--quick"] if command == "demo" else \
        ["train", "--precision", "fixed", "--hidden", "4"]
    backend = ["--transport"] if command == "demo" else ["--backend"]
    for flag, path, where in (
            ("--vcd", blocker / "core.vcd", "sim"),
            ("--vcd", tmp_path, "sim"),
            ("--trace", blocker / "sub" / "core.fst", "verilator")):
        argv = [*head, *backend, where, flag, str(path), "--out", str(tmp_path / "out")]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"fixar-hw {command}: {flag} {path}: " in err
        assert ("is not a directory" in err) or ("is a directory" in err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--quick", "--transport", "verilator", "--vcd", "x.vcd"],
     "--vcd is written by Amaranth's simulator: it needs --transport sim, not verilator"),
    (["demo", "--quick", "--transport", "sim", "--trace", "x.fst"],
     "--trace is written by Verilator: it needs --transport verilator, not sim"),
    (["demo", "--quick", "--vcd", "x.vcd", "--trace", "x.fst"],
     "give --vcd (Amaranth's simulator) or --trace (Verilator), not both"),
    (["demo", "--quick", "--trace", "x.vcd"], "--trace must name an .fst file, not 'x.vcd'"),
    (["train", "--precision", "fixed", "--vcd", "x.vcd"],
     "--vcd is written by Amaranth's simulator: it needs --backend sim, not numpy"),
    (["train", "--precision", "fixed", "--backend", "sim", "--trace", "x.fst"],
     "--trace is written by Verilator: it needs --backend verilator, not sim"),
])
def test_waveform_flags_need_their_simulator(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "run_demo", _no_run)
    monkeypatch.setattr(train_app, "run_training", _no_run)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_waveform_settings():
    s = demo_settings(quick=False, vcd="a.vcd", synth=False)
    assert (s.transport, s.vcd, s.trace) == ("sim", "a.vcd", None)
    s = demo_settings(quick=True, trace="a.fst")
    assert (s.transport, s.vcd, s.trace) == ("verilator", None, "a.fst")
    with pytest.raises(ValueError, match=r"^vcd is written by Amaranth's simulator \(transport "
                                         r"'sim'\), not by transport 'verilator'"):
        demo_settings(quick=True, transport="verilator", vcd="a.vcd")
    with pytest.raises(ValueError, match=r"^trace must name an \.fst file, not 'a\.vcd'$"):
        demo_settings(quick=True, trace="a.vcd")
    with pytest.raises(TypeError, match=r"^vcd must be a path, not 1$"):
        demo_settings(quick=True, vcd=1)
    with pytest.raises(ValueError, match=r"^trace is written by Verilator"):
        train_app.core_agent_factory("sim", trace="a.fst")


# --- mismatch reports ------------------------------------------------------------------------

def test_compare_names_the_word_and_cycle_of_the_first_difference():
    want = {"actor": {"l1.w": np.arange(6).reshape(2, 3)}, "critic": {"l1.b": np.zeros(2)}}
    got = {"actor": {"l1.w": want["actor"]["l1.w"].copy()}, "critic": {"l1.b": np.ones(2)}}
    got["actor"]["l1.w"][1, 2] = 1234
    where = {"actor": {"l1.w": np.arange(6).reshape(2, 3) + 0x1A00},
             "critic": {"l1.b": np.array([0x2000, 0x2001])}}
    check = compare("weights", got, want, addresses=where,
                    write_cycle={0x1A05: 40_112}.get)
    assert check.detail == ("weights[actor.l1.w] at (1, 2) is 1234, the golden model 5 "
                            "(1 of 6 differ); written at cycle 40,112 (bus word 0x1a05)")
    assert (check.address, check.cycle, check.mismatched) == (0x1A05, 40_112, 3)
    # a word the DMA did not write (or a transport that cannot tell): the word alone
    check = compare("weights", got, want, addresses=where, write_cycle=lambda addr: None)
    assert check.detail.endswith("(1 of 6 differ); read from bus word 0x1a05")
    assert (check.address, check.cycle) == (0x1A05, None)
    assert compare("weights", got, want).detail.endswith("(1 of 6 differ)")


def test_core_check_reports_a_corrupted_word_with_its_write_cycle(monkeypatch):
    """One word of the external memory reads back wrong: the report names the value, both
    values and the cycle at which the DMA wrote that word."""
    settings = demo_settings(quick=True)
    ddpg = settings.ddpg.replace(precision="fixed")
    config = CoreConfig(en.EngineConfig(ddpg, 3, 1, size=2, cores=1, update_kind="iterative"),
                        dma_addr_width=16)
    agent = DDPGAgent(ddpg, 3, 1, [-2.0], [2.0])
    fill([agent], np.random.default_rng(1), ddpg.batch_size)
    seen: dict = {}
    real_addresses = FixarDriver.state_addresses

    def addresses(self):
        seen["where"] = real_addresses(self)
        seen["transport"] = self.transport
        return seen["where"]

    real_read = SimTransport.mem_read

    def corrupted(self, addr, count):
        words = real_read(self, addr, count)
        bad = int(seen["where"][1]["critic"]["l1.w"][1, 2])  # target critic.l1.w[1, 2]
        if addr <= bad < addr + count:
            words[bad - addr] ^= 1
        return words

    monkeypatch.setattr(FixarDriver, "state_addresses", addresses)
    monkeypatch.setattr(SimTransport, "mem_read", corrupted)
    run = demo.run_core_check(agent, config, steps=1, actions=1)
    failed = {c.name: c for c in run.checks if not c.ok}
    assert set(failed) == {"state loaded and read back", "targets after 1 training steps"}
    bad = int(seen["where"][1]["critic"]["l1.w"][1, 2])
    for check in failed.values():
        assert check.mismatched == 1
        assert check.address == bad
        assert 0 < check.cycle <= run.sim_cycles
        assert f"written at cycle {check.cycle:,} (bus word 0x{bad:x})" in check.detail
    loaded = failed["state loaded and read back"]
    assert loaded.detail.startswith("state loaded and read back[targets.critic.l1.w] at "
                                    "(1, 2) is ")
    final = failed["targets after 1 training steps"]
    assert final.detail.startswith("targets after 1 training steps[critic.l1.w] at (1, 2) is ")
    assert final.cycle > loaded.cycle  # written again by the second read-back
    assert seen["transport"].write_cycle(bad) == final.cycle


# --- Verilator: FST traces -------------------------------------------------------------------

needs_verilator = pytest.mark.skipif(not VerilatorTransport.available(),
                                     reason="verilator-cli or a C++ compiler is not installed")


@pytest.mark.verilator
@pytest.mark.nightly  # a traced build of its own, minutes on two cores
@needs_verilator
def test_verilator_transport_writes_an_fst_trace(tmp_path):
    from .test_core_verilog import CONFIG

    path = tmp_path / "core.fst"
    transport = VerilatorTransport(CONFIG, trace=path)
    plain = VerilatorTransport(CONFIG)  # the untraced build, in the same process
    assert transport.library != plain.library
    drv, agent = loaded_driver(transport, CONFIG)
    weights, _, _ = drv.read_state()
    where = drv.state_addresses()[0]
    for net in weights:
        np.testing.assert_array_equal(weights[net]["l1.w"], agent.weights[net]["l1.w"])
    addrs = [int(a) for a in where["actor"]["l1.w"].ravel()]
    cycles = [transport.write_cycle(a) for a in addrs]
    assert all(c is not None and 0 < c <= transport.cycles for c in cycles)
    assert transport.mem_read(addrs[0], 1) == [word(weights["actor"]["l1.w"].ravel()[0])]
    transport.mem_write(addrs[0], [1])
    assert transport.write_cycle(addrs[0]) is None
    run = transport.cycles
    transport.close()
    plain.close()
    data = path.read_bytes()
    # the FST header block: type 0, length 329, then start and end time (ns), big-endian
    assert data[0] == 0 and int.from_bytes(data[1:9], "big") == 329
    assert int.from_bytes(data[9:17], "big") == 0
    assert int.from_bytes(data[17:25], "big") == 10 * run - 5  # edge N at 10 N - 5 ns
    # then blocks of (type, length) up to the end: value changes, geometry, hierarchy
    kinds, pos = [], 0
    while pos < len(data):
        kinds.append(data[pos])
        pos += 1 + int.from_bytes(data[pos + 1:pos + 9], "big")
    assert pos == len(data)
    assert kinds[0] == 0 and 3 in kinds and {1, 5, 8} & set(kinds) and {4, 6, 7} & set(kinds)


@pytest.mark.verilator
@needs_verilator
def test_verilator_trace_path_is_checked_before_the_build(tmp_path):
    from .test_core_verilog import CONFIG

    with pytest.raises(ValueError, match=r"^trace must name an \.fst file, not '.*core\.vcd'$"):
        VerilatorTransport(CONFIG, trace=tmp_path / "core.vcd")
    with pytest.raises(FileNotFoundError):
        VerilatorTransport(CONFIG, trace=tmp_path / "missing" / "core.fst")
