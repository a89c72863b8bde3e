"""``fixar-hw sweep``: the accelerator's design space, measured and projected.

A sweep takes a grid of :class:`SweepPoint` (PE grid side, AAP cores, update units, DDPG
precision, format set, board; the network and batch it trains), and for each point
(:func:`evaluate`):

* synthesizes the board top with the core (:func:`fixar_hw.flow.build.estimate`: LUT, FF, DSP and
  block RAM use, the fit check, and with ``fmax`` a placement-only Fmax estimate);
* counts the cycles of one training step and of one action from the engine's exact cycle
  model (:meth:`fixar_hw.train.description.EngineDescription.cycles`, the performance
  counters every unit's data-independent timing gives; the array's share is
  :func:`sw_model.arch.engine.program_cycles`);
* projects the throughput at the clock the design runs at on the board (the board clock, or
  the Fmax when lower): ``batch * f / step_cycles`` training samples per second and
  ``f / act_cycles`` actions per second. The projection is engine-bound: the host's transfers
  (batch upload, action read-back) are not counted.

:func:`run_sweep` evaluates the points on a local process pool (default), in this process, or
on a `Dask distributed <https://distributed.dask.org>`_ cluster given its scheduler address
(``pip install 'fixar-hw[dask]'``; the workers need the same fixar-hw installed). Each row is
cached as JSON under ``$XDG_CACHE_HOME/fixar-hw/sweep`` by :func:`point_key` (configuration,
board, Fmax or not, the hardware and golden-model sources and the tools' versions), so a
repeated sweep does no work; a point that fails gives a row with an ``error`` field.

:func:`pareto` picks the non-dominated fitting rows (cheapest for their throughput),
:func:`plot` draws cost against throughput per board with that front, :func:`write_csv` and
:func:`format_table` write the rows. The precisions share one datapath (``"fixed16"`` and
``"qat"`` narrow the activations at run time), so they differ in the ``CONFIG_ID`` constant
only; the step of ``"qat"`` is counted after the switch (no range tracking). What changes the
datapath is the format set (:data:`sw_model.arch.ddpg_config.FORMAT_SETS`): FIXAR's 32-bit formats
(``"fixar32"``) or 16-bit ones (``"narrow16"``).
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from fixar_hw.config import CoreConfig
from fixar_hw.flow.cache import cache_dir, tree_digest
from fixar_hw.platforms.boards import BOARDS
from sw_model.arch.ddpg_config import FORMAT_SETS
from sw_model.arch.engine import UPDATE_KINDS

__all__ = [
    "COLUMNS", "PRECISIONS", "Grid", "SweepPoint", "evaluate", "format_table", "grid",
    "is_scheduler_address", "pareto", "plot", "point_key", "run_sweep", "summary", "write_csv",
    "write_report",
]

#: Precisions a sweep takes (the fixed-point modes of
#: :class:`~sw_model.arch.ddpg_config.DDPGConfig`).
PRECISIONS: tuple[str, ...] = ("fixed", "fixed16", "qat")

#: Columns of a result row, in CSV order (an error row has the point's columns and ``error``).
COLUMNS: tuple[str, ...] = (
    "board", "size", "cores", "update_units", "update_kind", "precision", "formats", "hidden",
    "batch", "obs_dim", "act_dim", "dma_addr_width", "config_id", "lut", "ff", "dsp", "bram",
    "spram", "lut_util", "ff_util", "dsp_util", "bram_util", "util", "fits", "fmax_mhz",
    "clock_mhz", "run_mhz", "step_cycles", "step_array_cycles", "act_cycles", "act_array_cycles",
    "train_samples_per_s", "actions_per_s", "eval_s", "cached", "key", "error",
)

# bump when the rows evaluate() writes change meaning
_ROW_VERSION = 4
_POINT_FIELDS = ("board", "size", "cores", "update_units", "update_kind", "precision",
                 "formats", "hidden", "batch", "obs_dim", "act_dim", "dma_addr_width")
# "tcp://host:8786", "inproc://..." (a LocalCluster with processes=False), or "host:8786"
_SCHEDULER = re.compile(r"^([a-z][a-z0-9+.-]*://\S+|[^\s:/]+:\d+)$")


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"SweepPoint {name} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"SweepPoint {name} must be at least 1, not {value!r}")
    return value


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep: a core on a board.

    Parameters
    ----------
    size : int
        PE grid side (a power of two).
    cores : int
        AAP cores.
    precision : {"fixed", "fixed16", "qat"}
        :attr:`DDPGConfig.precision <sw_model.arch.ddpg_config.DDPGConfig>` of the agent.
    board : str
        A board of :data:`fixar_hw.platforms.boards.BOARDS`.
    formats : str
        A format set of :data:`sw_model.arch.ddpg_config.FORMAT_SETS` (default ``"fixar32"``).
    update_units : int
        Update units (a power of two up to ``size**2``).
    update_kind : {"pipelined", "iterative"}
        :attr:`EngineConfig.update_kind <sw_model.arch.engine.EngineConfig>`: the pipelined
        update unit (one element a cycle) or the compact iterative one (default
        ``"pipelined"``).
    obs_dim, act_dim : int
        Observation and action sizes of the environment (default Pendulum's 3 and 1).
    hidden : tuple of int
        Hidden layer sizes of both networks.
    batch : int
        Transitions per training step (the build's batch capacity too).
    dma_addr_width : int
        :attr:`CoreConfig.dma_addr_width <fixar_hw.config.CoreConfig>`.

    Raises
    ------
    TypeError, ValueError
        For a field of the wrong kind or value. Combinations the engine refuses (a size that
        is not a power of two, too many update units) are reported by :meth:`config`.
    """

    size: int
    cores: int
    precision: str = "fixed"
    board: str = "ulx3s-85f"
    formats: str = "fixar32"
    update_units: int = 1
    update_kind: str = "pipelined"
    obs_dim: int = 3
    act_dim: int = 1
    hidden: tuple[int, ...] = (16, 16)
    batch: int = 8
    dma_addr_width: int = 20

    def __post_init__(self) -> None:
        for name in ("size", "cores", "update_units", "obs_dim", "act_dim", "batch",
                     "dma_addr_width"):
            _count(getattr(self, name), name)
        if self.precision not in PRECISIONS:
            raise ValueError(f"SweepPoint precision must be one of {', '.join(PRECISIONS)}, "
                             f"not {self.precision!r}")
        if self.update_kind not in UPDATE_KINDS:
            raise ValueError(f"SweepPoint update_kind must be one of {', '.join(UPDATE_KINDS)}, "
                             f"not {self.update_kind!r}")
        if self.formats not in FORMAT_SETS:
            raise ValueError(f"SweepPoint formats must be one of {', '.join(FORMAT_SETS)}, "
                             f"not {self.formats!r}")
        if not isinstance(self.board, str):
            raise TypeError(f"SweepPoint board must be a board name, not {self.board!r}")
        if self.board not in BOARDS:
            raise ValueError(f"SweepPoint board must be one of {', '.join(BOARDS)}, not "
                             f"{self.board!r}")
        hidden = self.hidden
        if isinstance(hidden, str) or not isinstance(hidden, list | tuple) or not hidden:
            raise TypeError(f"SweepPoint hidden must be a non-empty tuple of integers, not "
                            f"{hidden!r}")
        object.__setattr__(self, "hidden", tuple(_count(n, "hidden size") for n in hidden))

    def config(self) -> CoreConfig:
        """The core's :class:`~fixar_hw.config.CoreConfig` (every other field at its default).

        Raises
        ------
        ValueError
            If the engine refuses the combination (the message says why).
        """
        from sw_model.arch.ddpg_config import DDPGConfig, format_set
        from sw_model.arch.engine import EngineConfig

        ddpg = DDPGConfig(hidden=self.hidden, precision=self.precision, batch_size=self.batch,
                          **format_set(self.formats))
        engine = EngineConfig(ddpg, self.obs_dim, self.act_dim, size=self.size,
                              cores=self.cores, update_units=self.update_units,
                              update_kind=self.update_kind)
        return CoreConfig(engine, dma_addr_width=self.dma_addr_width)

    @property
    def label(self) -> str:
        """A short name: ``"S4 C2 U1 fixed"``, with ``iterative`` after the update units when
        they are, and the format set unless ``"fixar32"`` (board left out)."""
        extra = "" if self.formats == "fixar32" else f" {self.formats}"
        kind = "" if self.update_kind == "pipelined" else f" {self.update_kind}"
        return (f"S{self.size} C{self.cores} U{self.update_units}{kind} "
                f"{self.precision}{extra}")

    def to_row(self) -> dict[str, Any]:
        """The point's columns of a result row (``hidden`` as ``"16-16"``)."""
        row = {name: getattr(self, name) for name in _POINT_FIELDS}
        row["hidden"] = "-".join(map(str, self.hidden))
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SweepPoint:
        """Inverse of :meth:`to_row` (other columns ignored; CSV strings accepted)."""
        kw: dict[str, Any] = {}
        for name in _POINT_FIELDS:
            value = row.get(name, "pipelined") if name == "update_kind" else row[name]
            if name == "hidden":
                value = tuple(int(n) for n in str(value).split("-"))
            elif name not in ("board", "precision", "formats", "update_kind"):
                value = int(value)
            kw[name] = value
        return cls(**kw)


class Grid(NamedTuple):
    """What :func:`grid` gives: the valid points, and the skipped ones with the reason."""

    points: list[SweepPoint]
    skipped: list[tuple[SweepPoint, str]]


def grid(sizes: Iterable[int], cores: Iterable[int], precisions: Iterable[str] = ("fixed",),
         boards: Iterable[str] = ("ulx3s-85f",), *, update_units: Iterable[int] = (1,),
         formats: Iterable[str] = ("fixar32",), **fields: Any) -> Grid:
    """Every combination of the axes, board outermost (duplicates removed, order kept).

    ``fields`` are the other :class:`SweepPoint` fields (``hidden``, ``batch``, ...), the same
    for every point. Combinations the engine refuses are skipped, with the reason.

    Raises
    ------
    TypeError, ValueError
        For a value no point can take (an unknown board or precision, a count below 1), or
        an empty axis.
    """
    axes = {"boards": list(boards), "sizes": list(sizes), "cores": list(cores),
            "update_units": list(update_units), "precisions": list(precisions),
            "formats": list(formats)}
    for name, values in axes.items():
        if not values:
            raise ValueError(f"the sweep needs at least one value of {name}")
    points: list[SweepPoint] = []
    skipped: list[tuple[SweepPoint, str]] = []
    seen: set[SweepPoint] = set()
    for board, size, n_cores, units, precision, fmts in itertools.product(*axes.values()):
        point = SweepPoint(size=size, cores=n_cores, precision=precision, board=board,
                           update_units=units, formats=fmts, **fields)
        if point in seen:
            continue
        seen.add(point)
        try:
            point.config()
        except ValueError as exc:
            skipped.append((point, str(exc)))
        else:
            points.append(point)
    return Grid(points, skipped)


# --- one point ---------------------------------------------------------------------------------

def _model_digest() -> str:
    """SHA-256 of the golden model's sources (the cycle model lives there)."""
    return tree_digest(("sw_model",))[:16]


def point_key(point: SweepPoint, *, fmax: bool) -> str:
    """The cache key of ``point``'s row: :func:`fixar_hw.flow.build.cache_key` (configuration JSON,
    board, Fmax or not, hardware sources, tool versions) with the golden model's sources.

    Raises
    ------
    ValueError
        If the engine refuses the point's combination.
    """
    from fixar_hw.flow.build import cache_key

    build_key = cache_key(point.config(), point.board, fmax=fmax)
    text = f"{_ROW_VERSION}|{build_key}|{_model_digest()}"
    return f"{point.board}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def evaluate(point: SweepPoint, *, fmax: bool = False, timeout: float | None = None
             ) -> dict[str, Any]:
    """Resources, clock, cycles and projected throughput of one point (see the module docs).

    A top-level function, so that worker processes and Dask workers can run it.

    Parameters
    ----------
    point : SweepPoint
    fmax : bool
        Also place for an Fmax estimate (Xilinx boards: never placed, no Fmax).
    timeout : float, optional
        Seconds allowed to each tool.

    Returns
    -------
    dict
        A flat, JSON-able row with the :data:`COLUMNS` (``error`` and ``cached`` left out;
        ``fmax_mhz`` None without placement). ``key`` is :func:`point_key` as computed where
        the row was evaluated.

    Raises
    ------
    ValueError
        If the engine refuses the combination.
    fixar_hw.errors.BuildError
        If a tool fails.
    """
    from fixar_hw.flow.build import estimate
    from fixar_hw.train.description import EngineDescription
    from sw_model.arch import ddpg_step
    from sw_model.arch.engine import compile_act, compile_step, program_cycles

    start = time.perf_counter()
    config = point.config()
    key = point_key(point, fmax=fmax)
    report = estimate(config, point.board, fmax=fmax, timeout=timeout)
    engine = config.engine
    formats = ddpg_step.activation_formats(engine.ddpg)
    step = compile_step(engine, formats)
    act = compile_act(engine, formats)
    description = EngineDescription(engine)
    step_cycles = description.cycles(step)["cycles"]
    act_cycles = description.cycles(act)["cycles"]
    hz = report.run_mhz * 1e6
    util = report.utilisation
    row: dict[str, Any] = point.to_row()
    row["config_id"] = f"0x{config.config_id:08x}"
    row.update({k: int(report.used.get(k, 0)) for k in ("lut", "ff", "dsp", "bram", "spram")})
    row.update({f"{k}_util": util.get(k) for k in ("lut", "ff", "dsp", "bram")})
    row.update({
        "util": max(util.values()) if util else None,
        "fits": bool(report.fits),
        "fmax_mhz": report.fmax_mhz,
        "clock_mhz": report.clock_mhz,
        "run_mhz": report.run_mhz,
        "step_cycles": step_cycles,
        "step_array_cycles": program_cycles(engine, step)["array_cycles"],
        "act_cycles": act_cycles,
        "act_array_cycles": program_cycles(engine, act)["array_cycles"],
        "train_samples_per_s": engine.batch * hz / step_cycles,
        "actions_per_s": hz / act_cycles,
        "eval_s": round(time.perf_counter() - start, 3),
        "key": key,
    })
    return row


# --- the sweep ---------------------------------------------------------------------------------

def _default_cache_dir() -> Path:
    return cache_dir("sweep")


def _read_cached(path: Path) -> dict[str, Any] | None:
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and "error" not in row else None


def _write_cached(path: Path, row: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(row), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def is_scheduler_address(text: str) -> bool:
    """Whether ``text`` reads as a Dask scheduler address (``"tcp://host:8786"``,
    ``"inproc://..."``, ``"host:8786"``); nothing is contacted."""
    return bool(_SCHEDULER.match(text))


def _error_row(point: SweepPoint, message: str) -> dict[str, Any]:
    return {**point.to_row(), "cached": False, "error": message}


def run_sweep(points: Sequence[SweepPoint], *, executor: Any = "process",
              workers: int | None = None, fmax: bool = False,
              cache_dir: str | os.PathLike[str] | None = None, cache: bool = True,
              timeout: float | None = None,
              progress: Callable[[int, int, dict[str, Any]], None] | None = None,
              evaluator: Callable[..., dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Evaluate ``points``, from the cache where it has them.

    Parameters
    ----------
    points : sequence of SweepPoint
    executor : "process", None, a scheduler address or an Executor
        ``"process"`` (default): a local :class:`~concurrent.futures.ProcessPoolExecutor`.
        None (or ``"serial"``): one point at a time in this process. A Dask scheduler address
        (``"tcp://host:8786"``, ``"host:8786"``): that cluster's workers, through
        ``distributed.Client(address).get_executor()``. A
        :class:`concurrent.futures.Executor`: used as given, and not shut down.
    workers : int, optional
        Processes of the local pool (default: the CPU count, at most one per point to
        evaluate). Only with ``executor="process"``.
    fmax : bool
        Also place for Fmax (:func:`evaluate`).
    cache_dir : path, optional
        Where rows are cached (default ``$XDG_CACHE_HOME/fixar-hw/sweep``).
    cache : bool
        Read and write the cache (default). The build cache of
        :func:`~fixar_hw.flow.build.estimate` is used either way.
    timeout : float, optional
        Seconds allowed to each tool of an evaluation.
    progress : callable, optional
        Called as ``progress(done, total, row)`` as each row arrives (cached rows first).
    evaluator : callable, optional
        Called as ``evaluator(point, fmax=fmax, timeout=timeout)`` (default :func:`evaluate`);
        for the pool and Dask, a top-level function (pickled by reference).

    Returns
    -------
    list of dict
        One row per point, in the order of ``points``; ``cached`` says whether it came from
        the cache. A point whose evaluation raised gives ``{**point.to_row(), "cached":
        False, "error": "ExceptionType: message"}`` (error rows are not cached). A row
        evaluated by a worker with other sources than here (its ``key`` differs from
        :func:`point_key` here) is an error row too.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter.
    ImportError
        For a scheduler address when ``distributed`` is not installed.
    OSError
        If the scheduler cannot be reached.
    """
    points = list(points)
    for p in points:
        if not isinstance(p, SweepPoint):
            raise TypeError(f"points must be SweepPoints, not {p!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, not {workers!r}")
    if not isinstance(fmax, bool):
        raise TypeError(f"fmax must be a bool, not {fmax!r}")
    mode: str
    if executor is None or executor == "serial":
        mode = "serial"
    elif executor == "process":
        mode = "process"
    elif isinstance(executor, str):
        if not is_scheduler_address(executor):
            raise ValueError(f"executor must be 'process', 'serial', None, a Dask scheduler "
                             f"address like 'tcp://host:8786' or an Executor, not {executor!r}")
        mode = "dask"
    elif isinstance(executor, cf.Executor):
        mode = "given"
    else:
        raise TypeError(f"executor must be 'process', 'serial', None, a Dask scheduler address "
                        f"or an Executor, not {executor!r}")
    if workers is not None and mode != "process":
        raise ValueError("workers sizes the local process pool: give it with "
                         "executor='process' only")
    where = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    if evaluator is None:
        evaluator = evaluate

    total = len(points)
    rows: list[dict[str, Any] | None] = [None] * total
    keys: dict[int, str] = {}
    todo: dict[SweepPoint, list[int]] = {}
    done = 0

    def finish(index: int, row: dict[str, Any]) -> None:
        nonlocal done
        rows[index] = row
        done += 1
        if progress is not None:
            progress(done, total, row)

    for i, point in enumerate(points):
        try:
            keys[i] = point_key(point, fmax=fmax)
        except ValueError as exc:
            finish(i, _error_row(point, f"{type(exc).__name__}: {exc}"))
            continue
        row = _read_cached(where / f"{keys[i]}.json") if cache else None
        if row is not None:
            finish(i, {**row, "cached": True})
        else:
            todo.setdefault(point, []).append(i)

    def settle(point: SweepPoint, get: Callable[[], dict[str, Any]]) -> None:
        indices = todo[point]
        try:
            row = dict(get())
        except Exception as exc:  # a failing point is a row, not the end of the sweep
            row = _error_row(point, f"{type(exc).__name__}: {exc}")
        else:
            key = keys[indices[0]]
            if row.get("key", key) != key:
                # the sources here may have changed since the sweep started
                key = point_key(point, fmax=fmax)
            if row.get("key", key) != key:
                row = _error_row(point, f"the worker evaluated other fixar-hw sources (key "
                                        f"{row.get('key')!r}, here {key!r}): install the same "
                                        f"version where the workers run")
            else:
                row["cached"] = False
                if cache:
                    _write_cached(where / f"{key}.json", {**row, "key": key})
        for i in indices:
            finish(i, dict(row))

    if todo:
        if mode == "serial":
            for point in todo:
                settle(point, lambda p=point: evaluator(p, fmax=fmax, timeout=timeout))
        else:
            _run_parallel(mode, executor, workers, todo, settle, evaluator, fmax, timeout)
    return [r for r in rows if r is not None]


def _run_parallel(mode: str, executor: Any, workers: int | None, todo: Mapping[SweepPoint, Any],
                  settle: Callable[[SweepPoint, Callable[[], dict[str, Any]]], None],
                  evaluator: Callable[..., dict[str, Any]], fmax: bool,
                  timeout: float | None) -> None:
    client = None
    own = True
    if mode == "process":
        n = min(workers or os.cpu_count() or 1, len(todo))
        # spawn: a clean interpreter per worker, the same on every OS
        pool: cf.Executor = cf.ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context("spawn"))
    elif mode == "dask":
        try:
            from distributed import Client
        except ImportError:  # optional: the 'dask' extra
            raise ImportError("a Dask scheduler address needs dask.distributed: pip install "
                              "'fixar-hw[dask]'") from None
        client = Client(executor)
        pool = client.get_executor(pure=False)
    else:
        pool, own = executor, False
    futures: dict[cf.Future, SweepPoint] = {}
    try:
        for point in todo:
            futures[pool.submit(evaluator, point, fmax=fmax, timeout=timeout)] = point
        for future in cf.as_completed(futures):
            settle(futures[future], future.result)
    finally:
        if own:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
        if client is not None:
            client.close()


# --- analysis and output -----------------------------------------------------------------------

def _ok(row: Mapping[str, Any], x: str, y: str) -> bool:
    if row.get("error") or not row.get("fits"):
        return False
    vx, vy = row.get(x), row.get(y)
    return (isinstance(vx, int | float) and isinstance(vy, int | float)
            and math.isfinite(vx) and math.isfinite(vy))


def pareto(rows: Iterable[Mapping[str, Any]], x: str = "lut", y: str = "train_samples_per_s"
           ) -> list[Mapping[str, Any]]:
    """The non-dominated rows that fit: no other fitting row has ``x`` at most and ``y`` at
    least theirs, one of them strictly (lower cost ``x``, higher throughput ``y``).

    Rows with an ``error``, ``fits`` false, or ``x`` or ``y`` missing are left out. Rows with
    equal ``x`` and ``y`` are all kept. The result is sorted by ``x`` (then ``y`` falling).
    """
    ranked = sorted((r for r in rows if _ok(r, x, y)), key=lambda r: (r[x], -r[y]))
    front: list[Mapping[str, Any]] = []
    best = -math.inf  # highest y of the rows with a smaller x
    for _, group in itertools.groupby(ranked, key=lambda r: r[x]):
        members = list(group)
        top = members[0][y]
        if top > best:
            front.extend(r for r in members if r[y] == top)
            best = top
    return front


def write_csv(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write ``rows`` as CSV: the :data:`COLUMNS`, then any other keys (sorted)."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *extra], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def _si(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def format_table(rows: Sequence[Mapping[str, Any]], x: str = "lut",
                 y: str = "train_samples_per_s") -> str:
    """A Markdown table of ``rows``; a ``*`` marks the rows of :func:`pareto` ``(x, y)``."""
    front = {id(r) for r in pareto(rows, x, y)}
    lines = ["| Board | Size | Cores | Upd | Precision | Formats | LUT | FF | DSP | BRAM "
             "| Max use | Fits | Fmax MHz | Clock MHz | Step cycles | Train samples/s "
             "| Actions/s | Pareto |",
             "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|:-:|"]
    for r in rows:
        kind = "" if r.get("update_kind", "pipelined") == "pipelined" else " iterative"
        head = (f"| {r['board']} | {r['size']} | {r['cores']} | {r['update_units']}{kind} "
                f"| {r['precision']} | {r.get('formats', 'fixar32')} ")
        if r.get("error"):
            message = str(r["error"]).splitlines()[0][:120].replace("|", "\\|")
            lines.append(head + f"| error: {message} |" + " |" * 11)
            continue
        fmax = "-" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.1f}"
        use = "-" if r.get("util") is None else f"{100 * r['util']:.1f} %"
        lines.append(
            head + f"| {r['lut']:,} | {r['ff']:,} | {r['dsp']} | {r['bram']} | {use} "
            f"| {'yes' if r['fits'] else 'NO'} | {fmax} | {r['run_mhz']:g} "
            f"| {r['step_cycles']:,} | {_si(r['train_samples_per_s'])} "
            f"| {_si(r['actions_per_s'])} | {'*' if id(r) in front else ''} |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], x: str = "lut",
         y: str = "train_samples_per_s") -> Path:
    """Scatter ``y`` against ``x`` per board (matplotlib, Agg backend), log-log, with the
    :func:`pareto` front as a step line; hollow markers for rows that do not fit, each point
    labelled ``S<size>C<cores>``. Error rows are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    try:
        boards = sorted({r["board"] for r in rows if not r.get("error")})
        markers = dict(zip(PRECISIONS, "osD", strict=True))
        labelled: set[tuple[Any, Any, str]] = set()
        for k, board in enumerate(boards):
            color = f"C{k}"
            for precision, marker in markers.items():
                for fits in (True, False):
                    pts = [r for r in rows if not r.get("error") and r["board"] == board
                           and r["precision"] == precision and bool(r.get("fits")) == fits
                           and r.get(x) is not None and r.get(y) is not None]
                    if not pts:
                        continue
                    ax.scatter([r[x] for r in pts], [r[y] for r in pts], marker=marker,
                               s=40, facecolors=color if fits else "none", edgecolors=color,
                               label=f"{board} {precision}" + ("" if fits else " (no fit)"))
                    for r in pts:
                        text = f"S{r['size']}C{r['cores']}"
                        if r.get("formats", "fixar32") != "fixar32":
                            text += f" {r['formats']}"
                        if (r[x], r[y], text) in labelled:
                            continue
                        labelled.add((r[x], r[y], text))
                        ax.annotate(text, (r[x], r[y]), fontsize=7,
                                    xytext=(4, 3), textcoords="offset points")
        front = pareto(rows, x, y)
        if front:
            ax.step([r[x] for r in front], [r[y] for r in front], where="post", color="0.3",
                    lw=1, ls="--", label="Pareto front", zorder=0)
        if boards:
            ax.margins(0.1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(x.replace("_", " "))
        ax.set_ylabel(y.replace("_", " "))
        ax.set_title("FIXAR design space: cost against projected throughput")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Counts of ``rows``: ``total``, ``cached``, ``errors``, ``fit``."""
    return {"total": len(rows), "cached": sum(bool(r.get("cached")) for r in rows),
            "errors": sum(bool(r.get("error")) for r in rows),
            "fit": sum(bool(r.get("fits")) and not r.get("error") for r in rows)}



def write_report(rows: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], *,
                 command: str | None = None, x: str = "lut",
                 y: str = "train_samples_per_s") -> list[Path]:
    """Write ``out/sweep.csv`` (:func:`write_csv`), ``out/pareto.png`` (:func:`plot`) and
    ``out/sweep.md`` (:func:`format_table`, the Pareto front, the errors and the command that
    reproduces the sweep); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = summary(rows)
    front = pareto(rows, x, y)
    md = ["# Design-space sweep", ""]
    if command:
        md += ["Reproduce:", "", "```", command, "```", ""]
    md += [f"{counts['total']} points: {counts['fit']} fit, {counts['errors']} failed, "
           f"{counts['cached']} from the cache. Throughput is engine-bound (host transfers "
           f"not counted), at the board clock or the Fmax when lower. `*`: Pareto front of "
           f"{x} against {y}.", "", format_table(rows, x, y)]
    if front:
        md += ["Pareto front, cheapest first: " + "; ".join(
            f"{r['board']} {SweepPoint.from_row(r).label} ({r[x]:,} {x}, {_si(r[y])} {y})"
            for r in front) + ".", ""]
    errors = [r for r in rows if r.get("error")]
    if errors:
        md += ["## Errors", ""]
        for r in errors:
            md += [f"### {r['board']} {SweepPoint.from_row(r).label}", "", "```",
                   str(r["error"]), "```", ""]
    paths = [write_csv(rows, out / "sweep.csv"), plot(rows, out / "pareto.png", x, y)]
    md_path = out / "sweep.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    return [*paths, md_path]
