"""Hardware cost of a mixed-precision network: LUTs, DSPs, weight memory and cycles.

A closed-form model for the bit-width search: given the layers of a network and, for each, a
scheme (``"fixed"``: DSP multiplier lanes; ``"sp2"``: shift-add LUT lanes, see
:mod:`sw_model.numerics.msq`), a weight width and an activation width, :class:`CostModel` returns a
:class:`Cost` without synthesizing anything. The per-lane figures come from a table measured by
pyosys synthesis (``python benchmarks/build_cost_tables.py``, packaged as
``sw_model/search/cost_tables.json``); ``python benchmarks/bench_cost_model.py`` checks the model
against full synthesis of whole configurations.

The accelerators modelled
-------------------------
Both are built of *engines*: an engine is one :class:`fixar_hw.arith.row_unit.MixedRowUnit` of one
*kind* ``(scheme, w_bits, a_bits)`` with some number of lanes. ``lane`` is the marginal cost
of one lane (:meth:`CostModel.lane`: its product, accumulator and closing registers) and
``base`` the cost of an engine without lanes (:meth:`CostModel.base`: the shared per-row scale
multiplier, which takes DSPs even in an SP2 engine, the requantizer, the drain counter and the
handshake). The base is what one engine adds on top of its lanes; leaving it out
underestimates small engines by up to one lane's worth of LUTs and 2-3 DSPs each. Memories,
activation units and control outside the engines are not modelled.

``mapping="shared"`` (layer-sequential)
    One engine of ``lanes`` lanes for every distinct kind that the network uses. Layers of the
    same kind run one after another on the same engine, so they share its hardware; a layer
    never uses an engine of another kind. ``luts`` and ``dsps`` are the sum over the distinct
    kinds of ``base + lanes * lane``; ``cycles`` the sum over the layers of their cycles on
    ``lanes`` lanes. Per-layer choices change LUTs and DSPs only through the set of kinds
    used, and every extra kind costs a whole engine.
``mapping="pipelined"`` (layer-pipelined, as FIXAR's and HAQ's accelerators)
    Every layer has its own engine, of its own kind, and the layers work concurrently on
    successive batches. ``lanes`` is the total lane budget, shared out in proportion to the
    layers' multiply-accumulates so that the stages are balanced
    (:meth:`CostModel.allocate`)::

        lanes_l = min(fan_out_l, max(1, round_half_up(lanes * macs_l / sum_j macs_j)))

    with ``macs = fan_in * fan_out`` (a lane beyond ``fan_out`` would idle, and every stage
    needs one). ``luts`` and ``dsps`` are ``sum_l base(kind_l) + lanes_l * lane(kind_l)``, so
    a layer's choice is weighted by its lanes: the wide layers' widths dominate the cost.
    ``cycles`` is the slowest stage, ``max_l`` of the layer's cycles on ``lanes_l`` lanes: the
    period at which the pipeline takes a new batch (a single batch's latency through the
    pipeline is the sum of the stages).

Per layer, in both mappings:

``mem_bits``
    Weight storage: ``fan_in * fan_out * w_bits`` plus one ``ALPHA_BITS``-bit scale per row
    (``fan_out`` of them) for both schemes, since :mod:`sw_model.numerics.msq` and the row unit
    scale
    every row, fixed or SP2. The network's is the sum.
``cycles``
    A :class:`MixedRowUnit` with ``n`` lanes computes ``n`` rows of a layer per pass, one
    input column per cycle, and its results drain one per cycle, so a vector occupies it for
    ``max(fan_in, n)`` cycles. A layer on a batch is ``V = batch * ceil(fan_out / n)``
    vectors, and takes, from the first column to the last row result, never stalled::

        V * max(fan_in, n) - (max(fan_in, n) - fan_in) + latency + n - 1

    (the first vector only needs ``fan_in`` cycles to enter; the last row result appears
    ``latency + n - 1`` cycles after the last column; ``latency`` is the row unit's, stored
    in the table). This equals ``batch * ceil(fan_in * fan_out / n) + latency + n - 1``
    when ``n`` divides ``fan_out`` and ``fan_in >= n``, and otherwise charges the idle
    lanes of a partial pass (a 1-output layer keeps one lane busy, not ``n``). The formula
    equals the cycles of the Amaranth simulation of the row unit (``tests/test_cost.py``).

The table is measured for 16-bit scales and results and accumulators sized for 512 columns
(``max_cols=512``, as ``benchmarks/bench_msq.py``); each doubling of the longest layer beyond
that would add about one LUT-and-register bit per lane, which the model leaves out.

Adding :class:`Cost` objects adds every field, so the sum of :meth:`CostModel.layer_cost` over
the layers counts a shared engine once per layer, where :meth:`CostModel.network_cost` counts it
once; and ``layer_cost`` gives a pipelined layer the whole lane budget.

The table
---------
``cost_tables.json`` holds, per scheme, entries ``{"w_bits", "a_bits", "lane_luts",
"lane_dsps", "base_luts", "base_dsps", ...}`` on a rectangular grid of measured widths, and
``row_unit_latency``; the tool versions, date and command of the build are stored with it.
:meth:`CostModel.lane` and :meth:`CostModel.base` interpolate linearly in ``w_bits`` between
the nearest measured widths at the same ``a_bits`` (bilinearly, if ``a_bits`` is not measured
either); before that, every quantity is replaced by its running maximum over the smaller
measured widths of both kinds, so that synthesis noise never makes a wider lane or engine
cheaper. Widths outside the measured range raise :class:`ValueError`.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sw_model.checks import check_int, check_real
from sw_model.numerics.msq import ALPHA_WIDTH
from sw_model.numerics.sp2 import MAX_M, MIN_M

__all__ = [
    "ALPHA_BITS",
    "A_BITS",
    "MAPPINGS",
    "SCHEMES",
    "W_BITS",
    "Cost",
    "CostModel",
    "LayerChoice",
    "LayerShape",
]

#: Lane schemes: DSP multiplier lanes and SP2 shift-add LUT lanes.
SCHEMES: tuple[str, ...] = ("fixed", "sp2")
#: Allowed weight widths per scheme; SP2 codes exist from ``sw_model.numerics.sp2.MIN_M`` to
#: ``MAX_M``.
W_BITS: dict[str, tuple[int, ...]] = {
    "fixed": tuple(range(2, 17)),
    "sp2": tuple(range(MIN_M, MAX_M + 1)),
}
#: Allowed activation widths.
A_BITS: tuple[int, ...] = (4, 6, 8, 12, 16)
#: Width of the per-row scale of both schemes (:data:`sw_model.numerics.msq.ALPHA_WIDTH`).
ALPHA_BITS: int = ALPHA_WIDTH
#: Mappings of a network onto engines (see the module docs).
MAPPINGS: tuple[str, ...] = ("shared", "pipelined")

_FIELDS = ("lane_luts", "lane_dsps", "base_luts", "base_dsps")


def _check_scheme(scheme: object, name: str = "scheme") -> str:
    if not isinstance(scheme, str):
        raise TypeError(f"{name} must be a str, not {scheme!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"{name} must be 'fixed' or 'sp2', not {scheme!r}")
    return scheme


def _check_seq(seq: object, name: str, cls: type) -> None:
    if not isinstance(seq, Sequence) or isinstance(seq, str):
        raise TypeError(f"{name} must be a sequence, not {seq!r}")
    for k, item in enumerate(seq):
        if not isinstance(item, cls):
            raise TypeError(f"{name}[{k}] must be a {cls.__name__}, not {item!r}")


def _check_widths(scheme: str, w_bits: object, a_bits: object) -> tuple[int, int]:
    check_int(w_bits, "w_bits", minimum=1)
    check_int(a_bits, "a_bits", minimum=1)
    allowed = W_BITS[scheme]
    if w_bits not in allowed:
        raise ValueError(f"w_bits must be from {allowed[0]} to {allowed[-1]} for scheme "
                         f"{scheme!r}, not {w_bits!r}")
    if a_bits not in A_BITS:
        raise ValueError(f"a_bits must be one of {A_BITS}, not {a_bits!r}")
    return w_bits, a_bits  # type: ignore[return-value]


@dataclass(frozen=True)
class LayerShape:
    """One weight layer ``y = W x``, with ``W`` of shape ``(fan_out, fan_in)``.

    Parameters
    ----------
    name : str
        A label (may be empty).
    fan_in : int
        Inputs (columns of ``W``), at least 1.
    fan_out : int
        Outputs (rows of ``W``), at least 1.

    Raises
    ------
    TypeError
        If ``name`` is not a str or a fan is not an integer.
    ValueError
        If a fan is below 1.
    """

    name: str
    fan_in: int
    fan_out: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, not {self.name!r}")
        check_int(self.fan_in, "fan_in", minimum=1)
        check_int(self.fan_out, "fan_out", minimum=1)

    @property
    def weights(self) -> int:
        """Number of weights: ``fan_in * fan_out``."""
        return self.fan_in * self.fan_out


@dataclass(frozen=True)
class LayerChoice:
    """Quantization of one layer: its lane scheme and its weight and activation widths.

    Parameters
    ----------
    scheme : {"fixed", "sp2"}
        ``"fixed"``: fixed-point weights on DSP multiplier lanes; ``"sp2"``: SP2 codes on
        shift-add LUT lanes.
    w_bits : int
        Weight code width, one of ``W_BITS[scheme]``.
    a_bits : int
        Activation width, one of :data:`A_BITS`.

    Raises
    ------
    TypeError
        If a field has the wrong type.
    ValueError
        If the scheme is unknown or a width is not allowed for it.
    """

    scheme: str
    w_bits: int
    a_bits: int

    def __post_init__(self) -> None:
        _check_widths(_check_scheme(self.scheme), self.w_bits, self.a_bits)

    @property
    def kind(self) -> tuple[str, int, int]:
        """``(scheme, w_bits, a_bits)``: layers of one kind share an engine (shared mapping)."""
        return self.scheme, self.w_bits, self.a_bits


@dataclass(frozen=True)
class Cost:
    """Hardware cost of a layer or a network (see the module docs for the model).

    Parameters
    ----------
    luts : float
        ECP5 LUT4s (a carry cell counts as two).
    dsps : float
        ECP5 MULT18X18D blocks.
    mem_bits : int
        Weight and scale storage in bits (on the training engine's array,
        :class:`sw_model.search.engine_cost.EngineCostModel`, weights and layer inputs).
    cycles : int
        Cycles of one forward pass of a batch.

    Raises
    ------
    TypeError, ValueError
        If a field is not a non-negative number (an integer for ``mem_bits`` and ``cycles``).
    """

    luts: float
    dsps: float
    mem_bits: int
    cycles: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "luts", check_real(self.luts, "luts", minimum=0))
        object.__setattr__(self, "dsps", check_real(self.dsps, "dsps", minimum=0))
        check_int(self.mem_bits, "mem_bits", minimum=0)
        check_int(self.cycles, "cycles", minimum=0)

    def __add__(self, other: object) -> Cost:
        """Field-wise sum (layers run one after another, so cycles add too)."""
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.luts + other.luts, self.dsps + other.dsps,
                    self.mem_bits + other.mem_bits, self.cycles + other.cycles)

    def __radd__(self, other: object) -> Cost:
        """``0 + cost`` is ``cost``, so that :func:`sum` works."""
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return NotImplemented


def _grid(scheme: str, entries: object) -> dict[str, Any]:
    """Validated rectangular grid of one scheme, made monotone (running maxima)."""
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise ValueError(f"table entries of {scheme!r} must be a non-empty list, "
                         f"not {entries!r}")
    points: dict[tuple[int, int], list[float]] = {}
    for e in entries:
        if not isinstance(e, Mapping):
            raise TypeError(f"table entry of {scheme!r} must be a mapping, not {e!r}")
        missing = [k for k in ("w_bits", "a_bits", *_FIELDS) if k not in e]
        if missing:
            raise ValueError(f"table entry of {scheme!r} lacks {', '.join(missing)}: {e!r}")
        key = (check_int(e["w_bits"], f"{scheme} entry w_bits", minimum=1),
               check_int(e["a_bits"], f"{scheme} entry a_bits", minimum=1))
        if key in points:
            raise ValueError(f"table holds {scheme!r} w_bits={key[0]}, a_bits={key[1]} twice")
        points[key] = [check_real(e[f], f"{scheme} entry {f}", minimum=0) for f in _FIELDS]
    ws = sorted({w for w, _ in points})
    as_ = sorted({a for _, a in points})
    holes = [(w, a) for w in ws for a in as_ if (w, a) not in points]
    if holes:
        raise ValueError(f"table entries of {scheme!r} must form a grid; missing "
                         f"(w_bits, a_bits) {holes[:4]!r}")
    values = [[list(points[w, a]) for a in as_] for w in ws]
    for i in range(len(ws)):
        for j in range(len(as_)):
            for f in range(len(_FIELDS)):
                prev = [values[i - 1][j][f]] if i else []
                prev += [values[i][j - 1][f]] if j else []
                values[i][j][f] = max([values[i][j][f], *prev])
    return {"w": ws, "a": as_, "values": values}


def _bracket(axis: list[int], x: int, name: str, scheme: str) -> tuple[int, int, float]:
    """Indices ``i0 <= i1`` around ``x`` in ``axis`` and the weight of ``i1``."""
    if not axis[0] <= x <= axis[-1]:
        raise ValueError(f"{name} must be within the measured {axis[0]} to {axis[-1]} for "
                         f"scheme {scheme!r} in this table, not {x!r}")
    for i, v in enumerate(axis):
        if v == x:
            return i, i, 0.0
        if v > x:
            return i - 1, i, (x - axis[i - 1]) / (v - axis[i - 1])
    raise AssertionError("unreachable")  # pragma: no cover


class CostModel:
    """Resources, memory and cycles of a network on the engine model of the module docs.

    Parameters
    ----------
    table : Mapping
        A cost table as in ``sw_model/search/cost_tables.json`` (see the module docs): at least
        ``"entries"`` (per scheme, a list of measured points) and ``"row_unit_latency"``.
    lanes : int, optional
        At least 1. With ``mapping="shared"``, the lanes of every engine (multipliers working
        in parallel on one layer); with ``mapping="pipelined"``, the total over the layers'
        engines, shared out by :meth:`allocate`.
    mapping : {"shared", "pipelined"}, optional
        One engine per distinct kind, layers in sequence; or one engine per layer, layers in a
        pipeline (see the module docs).

    Raises
    ------
    TypeError, ValueError
        If ``table`` is malformed, ``lanes`` is not a positive integer or ``mapping`` is not
        one of :data:`MAPPINGS`.

    Examples
    --------
    >>> model = CostModel.load(lanes=16)
    >>> shapes = [LayerShape("fc1", 17, 400), LayerShape("fc2", 400, 300)]
    >>> choices = [LayerChoice("fixed", 8, 16), LayerChoice("sp2", 4, 8)]
    >>> cost = model.network_cost(shapes, choices, batch=64)
    >>> cost.mem_bits == 17 * 400 * 8 + 400 * 300 * 4 + (400 + 300) * ALPHA_BITS
    True
    >>> CostModel.load(lanes=16, mapping="pipelined").allocate(shapes)
    (1, 15)
    """

    def __init__(self, table: Mapping, *, lanes: int = 16, mapping: str = "shared") -> None:
        if not isinstance(table, Mapping):
            raise TypeError(f"table must be a mapping, not {table!r}")
        self._lanes = check_int(lanes, "lanes", minimum=1)
        if not isinstance(mapping, str):
            raise TypeError(f"mapping must be a str, not {mapping!r}")
        if mapping not in MAPPINGS:
            raise ValueError(f"mapping must be 'shared' or 'pipelined', not {mapping!r}")
        self._mapping = mapping
        entries = table.get("entries")
        if not isinstance(entries, Mapping):
            raise ValueError(f"table must have an 'entries' mapping, not {entries!r}")
        unknown = [s for s in entries if s not in SCHEMES]
        if unknown:
            raise ValueError(f"table entries must be for 'fixed' and 'sp2', not {unknown!r}")
        self._grids = {s: _grid(s, entries[s]) for s in SCHEMES if s in entries}
        self._latency = check_int(table.get("row_unit_latency"), "table row_unit_latency",
                                  minimum=0)
        self._table = copy.deepcopy(dict(table))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, lanes: int = 16,
             mapping: str = "shared") -> CostModel:
        """A model from a JSON table; by default the packaged ``sw_model/search/cost_tables.json``.

        Parameters
        ----------
        path : str or os.PathLike, optional
            JSON file written by ``benchmarks/build_cost_tables.py`` (or by dumping
            :attr:`table`).
        lanes, mapping : optional
            As for the constructor.

        Raises
        ------
        TypeError
            If ``path`` is not a str or path.
        OSError, ValueError
            If the file cannot be read or holds no valid table.
        """
        if path is None:
            text = (importlib.resources.files("sw_model.search") / "cost_tables.json").read_text(
                encoding="utf-8")
        elif isinstance(path, str | os.PathLike):
            with open(path, encoding="utf-8") as f:
                text = f.read()
        else:
            raise TypeError(f"path must be a str, a path or None, not {path!r}")
        return cls(json.loads(text), lanes=lanes, mapping=mapping)

    @property
    def lanes(self) -> int:
        """Lanes per engine (shared mapping) or in total (pipelined mapping)."""
        return self._lanes

    @property
    def mapping(self) -> str:
        """``"shared"`` or ``"pipelined"``."""
        return self._mapping

    @property
    def latency(self) -> int:
        """Row unit latency in cycles (from the table)."""
        return self._latency

    @property
    def table(self) -> dict[str, Any]:
        """A copy of the table, JSON-serializable as given (``CostModel(model.table)`` is
        equivalent to ``model``)."""
        return copy.deepcopy(self._table)

    def _lookup(self, scheme: str, w_bits: int, a_bits: int) -> list[float]:
        _check_widths(_check_scheme(scheme), w_bits, a_bits)
        grid = self._grids.get(scheme)
        if grid is None:
            raise ValueError(f"scheme {scheme!r} has no entries in this table")
        i0, i1, u = _bracket(grid["w"], w_bits, "w_bits", scheme)
        j0, j1, v = _bracket(grid["a"], a_bits, "a_bits", scheme)
        val = grid["values"]
        return [(1 - u) * (1 - v) * val[i0][j0][f] + u * (1 - v) * val[i1][j0][f]
                + (1 - u) * v * val[i0][j1][f] + u * v * val[i1][j1][f]
                for f in range(len(_FIELDS))]

    def lane(self, scheme: str, w_bits: int, a_bits: int) -> tuple[float, float]:
        """``(luts, dsps)`` of one lane of a kind (interpolated as the module docs say).

        Raises
        ------
        TypeError, ValueError
            If the scheme or a width is not allowed, or outside the table's measured range.
        """
        lut, dsp, _, _ = self._lookup(scheme, w_bits, a_bits)
        return lut, dsp

    def base(self, scheme: str, w_bits: int, a_bits: int) -> tuple[float, float]:
        """``(luts, dsps)`` of an engine of a kind without its lanes (scaler, drain, control).

        Raises
        ------
        TypeError, ValueError
            As :meth:`lane`.
        """
        _, _, lut, dsp = self._lookup(scheme, w_bits, a_bits)
        return lut, dsp

    def engine(self, scheme: str, w_bits: int, a_bits: int, lanes: int | None = None
               ) -> tuple[float, float]:
        """``(luts, dsps)`` of a whole engine of a kind: ``base + lanes * lane``.

        Parameters
        ----------
        scheme, w_bits, a_bits
            The kind.
        lanes : int, optional
            Its lanes (at least 1); default :attr:`lanes`.
        """
        n = self._lanes if lanes is None else check_int(lanes, "lanes", minimum=1)
        lane_lut, lane_dsp, base_lut, base_dsp = self._lookup(scheme, w_bits, a_bits)
        return base_lut + n * lane_lut, base_dsp + n * lane_dsp

    def allocate(self, shapes: Sequence[LayerShape]) -> tuple[int, ...]:
        """Lanes of each layer's engine.

        With ``mapping="shared"``, :attr:`lanes` for every layer; with ``"pipelined"``,
        ``min(fan_out, max(1, round_half_up(lanes * macs / total_macs)))`` per layer, where
        ``macs = fan_in * fan_out`` (see the module docs).

        Raises
        ------
        TypeError
            If ``shapes`` is not a sequence of :class:`LayerShape`.
        """
        _check_seq(shapes, "shapes", LayerShape)
        if self._mapping == "shared":
            return (self._lanes,) * len(shapes)
        total = sum(s.weights for s in shapes)
        # round half up of lanes * macs / total, in integers
        return tuple(min(s.fan_out, max(1, (2 * self._lanes * s.weights + total) // (2 * total)))
                     for s in shapes)

    def _layer_terms(self, shape: LayerShape, choice: LayerChoice, batch: int, n: int
                     ) -> tuple[int, int]:
        """``(mem_bits, cycles)`` of one layer on ``n`` lanes."""
        mem = shape.weights * choice.w_bits + shape.fan_out * ALPHA_BITS
        vectors = batch * -(-shape.fan_out // n)
        period = max(shape.fan_in, n)
        cycles = vectors * period - (period - shape.fan_in) + self._latency + n - 1
        return mem, cycles

    def layer_cost(self, shape: LayerShape, choice: LayerChoice, *, batch: int = 1) -> Cost:
        """Cost of one layer alone: its engine, its weights and its cycles (a network of one
        layer, which on the pipelined mapping gets ``min(lanes, fan_out)`` lanes).

        Parameters
        ----------
        shape : LayerShape
        choice : LayerChoice
        batch : int, optional
            Vectors per forward pass, at least 1.

        Raises
        ------
        TypeError, ValueError
            If an argument has the wrong type or value.
        """
        return self.network_cost([shape], [choice], batch=batch)

    def network_cost(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice], *,
                     batch: int = 1) -> Cost:
        """Cost of a network on the model's mapping (see the module docs).

        Shared: one engine per distinct kind, layers one after another, cycles summed.
        Pipelined: one engine per layer with :meth:`allocate`'s lanes, cycles of the slowest.

        Parameters
        ----------
        shapes : sequence of LayerShape
            The layers, in order.
        choices : sequence of LayerChoice
            One choice per layer.
        batch : int, optional
            Vectors per forward pass, at least 1.

        Returns
        -------
        Cost
            The zero cost for an empty network.

        Raises
        ------
        TypeError
            If ``shapes`` or ``choices`` is not a sequence of the right objects, or ``batch``
            is not an integer.
        ValueError
            If the lengths differ, ``batch`` is below 1, or a kind is outside the table.
        """
        check_int(batch, "batch", minimum=1)
        _check_seq(shapes, "shapes", LayerShape)
        _check_seq(choices, "choices", LayerChoice)
        if len(shapes) != len(choices):
            raise ValueError(f"choices must have one entry per layer ({len(shapes)}), "
                             f"not {len(choices)}")
        lanes = self.allocate(shapes)
        luts = dsps = 0.0
        if self._mapping == "shared":
            engines = [(kind, self._lanes) for kind in dict.fromkeys(c.kind for c in choices)]
        else:
            engines = [(c.kind, n) for c, n in zip(choices, lanes, strict=True)]
        for kind, n in engines:
            lut, dsp = self.engine(*kind, lanes=n)
            luts += lut
            dsps += dsp
        mem, cycles = 0, []
        for shape, choice, n in zip(shapes, choices, lanes, strict=True):
            m, c = self._layer_terms(shape, choice, batch, n)
            mem += m
            cycles.append(c)
        total = sum(cycles) if self._mapping == "shared" else max(cycles, default=0)
        return Cost(luts, dsps, mem, total)

    def __repr__(self) -> str:
        return (f"CostModel(<{self._table.get('family', '?')} table>, lanes={self._lanes}, "
                f"mapping={self._mapping!r})")
