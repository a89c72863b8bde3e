"""One inference through the plain-Verilog testbench ``examples/verilog/fixar_core_tb.v``.

The testbench (written as a Verilog user would write it: tasks on the control port, a memory
array behind the DMA port, ``$readmemh``/``$writememh``) runs a *host script* against the
exported core. This module writes the script and the memory image for one noisy action, builds
the testbench with Verilator (``--binary``, cached) and reads the action back:

* :class:`RecordingTransport` is a :class:`~fixar_hw.host.driver.Transport` that performs nothing:
  it records what a :class:`~fixar_hw.host.driver.FixarDriver` does as script records (control
  writes, status polls, reads to print) and collects the words the driver stores in external
  memory into the preload image (a word stored again with another value after the first
  descriptor that could have read it becomes a script record instead);
* :func:`inference_script` runs the driver's own
  :meth:`~fixar_hw.host.driver.FixarDriver.load_state`
  and :meth:`~fixar_hw.host.driver.FixarDriver.act` against one, so the script is exactly what the
  driver sends to a real core;
* :func:`run_verilog_inference` builds and runs the testbench and returns the action codes.

Script records are ``(kind, addr, data)``: 1 control write, 2 poll ``STATUS`` (``data``:
cycles between polls) until done, failing on error, 3 control read (printed), 4 store ``data``
at external word ``addr``; the file ends with a record of kind 0.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from fixar_hw.config import CoreConfig
from fixar_hw.flow.export import (
    _compiler_version,
    _make_flags,
    _require_verilator,
    _verilator_env,
    _verilator_version,
)
from fixar_hw.host.driver import FixarDriver, Transport
from fixar_hw.sim.core_verilator import _cached_build, core_verilog
from fixar_hw.soc.csr import OPS, register_map
from fixar_hw.soc.dma import beats_to_words
from fixar_hw.tools import run_tool, tool_failure
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.numerics.fixed import FixedFormat

__all__ = [
    "TESTBENCH",
    "InferenceScript",
    "RecordingTransport",
    "build_testbench",
    "decode_action",
    "inference_script",
    "run_verilog_inference",
]

#: The testbench source.
TESTBENCH = Path(__file__).resolve().parents[2] / "examples" / "verilog" / "fixar_core_tb.v"
_TB_TOP = "fixar_core_tb"
_SCRIPT_RECORDS = 32768
_KIND = {"write": 1, "poll": 2, "read": 3, "store": 4}


class RecordingTransport(Transport):
    """A transport that records a driver's accesses as a host script (see the module docs).

    Reads of registers with a fixed value (``ID``, ``VERSION``, ``CONFIG_ID``, ...) return it
    and become print records; a read of ``STATUS`` returns *done* and becomes a poll record.
    Other reads cannot be answered before the script runs and raise :class:`ValueError`.

    Parameters
    ----------
    config : CoreConfig
    poll : int
        Cycles between the testbench's status polls.

    Attributes
    ----------
    script : list of (int, int, int)
    memory : dict
        The preload image (bus word address to word).
    reads : list of (int, int)
        ``(addr, count)`` of every :meth:`mem_read`, in order.
    """

    def __init__(self, config: CoreConfig, *, poll: int = 64) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if isinstance(poll, bool) or not isinstance(poll, int) or poll < 0:
            raise ValueError(f"poll must be a non-negative integer, not {poll!r}")
        regmap = register_map(config)
        self.config, self.poll = config, poll
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
        if offset not in self._fixed:
            raise ValueError(f"the recording transport cannot read control word 0x{offset:x}: "
                             "its value is known only when the script runs")
        self.script.append((_KIND["read"], offset, 0))
        return self._fixed[offset]

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


class InferenceScript(NamedTuple):
    """What :func:`inference_script` returns."""

    #: The external memory image, words from address 0.
    ext_mem: list[int]
    #: Script records ``(kind, addr, data)`` (without the final kind-0 record).
    script: list[tuple[int, int, int]]
    #: ``(addr, count)``: the external words holding the action after the run.
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
                     seed: int | None = None, poll: int = 64) -> InferenceScript:
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
    image = [0] * (max(rec.memory, default=-1) + 1)
    for a, w in rec.memory.items():
        image[a] = w
    return InferenceScript(image, list(rec.script), rec.reads[-1])


def decode_action(config: CoreConfig, words: Sequence[int]) -> np.ndarray:
    """The action codes (``act_fmt``) in the external words of an :class:`InferenceScript`'s
    ``out_region``."""
    e = config.engine
    plan = e.plan
    mem = {g["name"]: g for g in register_map(config).memories}["A"]
    drv = FixarDriver(RecordingTransport(config), config)
    rows = drv.unpack_words("A", beats_to_words([int(w) for w in words], mem["bits"], 32))
    out = plan.regions["p.out"]
    A = np.zeros((plan.a_words, e.size), dtype=np.int64)
    A[out.base:out.base + out.stride] = rows
    return en.read_action(e, en.EngineState(A, A, A, A, A, 0, None))


def _mem_words(config: CoreConfig) -> int:
    """External words the driver's staging windows span."""
    return sum(g["depth"] * g["beats"] for g in register_map(config).memories)


def build_testbench(config: CoreConfig, *, wait_states: int = 0,
                    cflags: Sequence[str] = ("-O1",), timeout: float = 3600) -> Path:
    """The Verilator executable of :data:`TESTBENCH` around the exported core of ``config``
    (``--binary``; cached under ``~/.cache/fixar-hw/verilog-tb/``).

    Raises
    ------
    FileNotFoundError
        If the testbench source is not there (an installed wheel has no ``examples/``).
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
              "MEM_WORDS": f"64'd{_mem_words(config)}", "WAIT_STATES": wait_states,
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
                          timeout: float = 600) -> np.ndarray:
    """One noisy action computed by the Verilog testbench (see :func:`inference_script` for
    the parameters); returns the ``act_fmt`` action codes.

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
    exe = build_testbench(config, wait_states=wait_states)
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
