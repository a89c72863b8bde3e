"""Activation functions in fixed point: identity, ReLU and a table-driven tanh, with derivatives.

This is the golden model of the activation stage of the accelerator, and the trainer's
fixed-point forward and backward passes call the same functions, so both compute the same codes.

Definitions (``z`` a code of ``in_fmt``, results codes of ``out_fmt``)
--------------------------------------------------------------------
``identity``
    ``requantize(z, in_fmt.frac, out_fmt, rounding, "saturate")``.
``relu``
    The identity of ``max(z, 0)``. Its derivative is 1 for ``z > 0`` and 0 otherwise (0 at 0).
``tanh``
    A table lookup. :class:`TanhTable` covers ``|x| < 2**range_log2`` with ``2**index_bits``
    entries; entry ``k`` is ``tanh((k + 1/2) * step)`` (the midpoint of its interval,
    ``step = 2**(range_log2 - index_bits)``) rounded half-even to ``out_fmt``. The index of a
    code is ``|z| >> (in_fmt.frac + range_log2 - index_bits)``, clamped to the last entry, and
    the result takes the sign of ``z`` (0 for ``z = 0``), so ``tanh(-x) = -tanh(x)`` exactly.
    The table is a ROM in hardware; there is no multiplier. The error is at most ``step / 2``
    (tanh is 1-Lipschitz) plus half an output step, plus ``1 - tanh(2**range_log2)`` beyond
    the table.
    Its derivative is computed from the output ``y`` as ``1 - y**2``, exactly, then requantized.

The table is computed with ``numpy.tanh`` in float64 and rounded; the hardware ROM is built from
:meth:`TanhTable.entries`, so both sides use the same integers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sw_model.numerics import kernels
from sw_model.numerics.fixed import (
    ROUNDING_MODES,
    FixedFormat,
    Rounding,
    check_rounding,
    requantize,
)

__all__ = ["ACTIVATIONS", "TanhTable", "activate", "check_kind", "derivative", "resolve_table"]

ACTIVATIONS: tuple[str, ...] = ("identity", "relu", "tanh")


def check_kind(kind: object) -> str:
    """Return ``kind`` if it names an activation, else raise ``TypeError``/``ValueError``."""
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, not {kind!r}")
    if kind not in ACTIVATIONS:
        raise ValueError(f"kind must be one of 'identity', 'relu', 'tanh', not {kind!r}")
    return kind


@dataclass(frozen=True)
class TanhTable:
    """A tanh lookup table from ``in_fmt`` codes to ``out_fmt`` codes.

    Parameters
    ----------
    in_fmt : FixedFormat
        Signed input format.
    out_fmt : FixedFormat
        Signed output format. Entries saturate to its range (``FixedFormat(16, 14)`` holds all
        of tanh's range; ``FixedFormat(16, 15)`` saturates values within one step of 1).
    index_bits : int
        log2 of the number of entries, 1 to 16.
    range_log2 : int
        The table covers ``|x| < 2**range_log2``; ``in_fmt.frac + range_log2 >= index_bits``
        so that the index is a plain shift of the input code.

    Raises
    ------
    TypeError, ValueError
        For a wrong kind or range of a parameter.
    """

    in_fmt: FixedFormat
    out_fmt: FixedFormat
    index_bits: int = 10
    range_log2: int = 2

    def __post_init__(self) -> None:
        for name in ("in_fmt", "out_fmt"):
            fmt = getattr(self, name)
            if not isinstance(fmt, FixedFormat):
                raise TypeError(f"TanhTable {name} must be a FixedFormat, not {fmt!r}")
            if not fmt.signed:
                raise ValueError(f"TanhTable {name} must be signed, not {fmt!r}")
        for name, lo, hi in (("index_bits", 1, 16), ("range_log2", -8, 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"TanhTable {name} must be an integer, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"TanhTable {name} must be from {lo} to {hi}, not {value!r}")
        if self.shift < 0:
            raise ValueError(
                f"TanhTable needs in_fmt.frac + range_log2 >= index_bits, not "
                f"{self.in_fmt.frac} + {self.range_log2} < {self.index_bits}")

    @property
    def size(self) -> int:
        """Number of entries, ``2**index_bits``."""
        return 1 << self.index_bits

    @property
    def shift(self) -> int:
        """Right shift from ``|z|`` to the table index (``in_fmt.frac + range_log2 -
        index_bits``)."""
        return self.in_fmt.frac + self.range_log2 - self.index_bits

    @property
    def step(self) -> float:
        """Input interval of one entry."""
        return 2.0 ** (self.range_log2 - self.index_bits)

    def entries(self) -> np.ndarray:
        """The table: ``out_fmt`` codes of ``tanh((k + 1/2) * step)``, ``k < size`` (int64)."""
        return _entries(self.out_fmt, self.index_bits, self.range_log2).copy()

    def error_bound(self) -> float:
        """Largest ``|table tanh(x) - tanh(x)|`` over all inputs (see the module docs)."""
        tail = 1.0 - float(np.tanh(2.0**self.range_log2))
        return max(self.step / 2, tail) + self.out_fmt.resolution / 2

    def lookup(self, z_q: npt.ArrayLike) -> np.ndarray:
        """Table tanh of ``in_fmt`` codes: ``sign(z)`` times the entry of ``|z|``."""
        entries = _entries(self.out_fmt, self.index_bits, self.range_log2)
        flat = _flat_int64(z_q)
        if flat is not None and self.in_fmt.width < 64 and self.shift <= 62:
            out = np.empty(np.shape(z_q), dtype=np.int64)
            if kernels.table_lookup(flat, self.in_fmt.min_int, self.in_fmt.max_int, entries,
                                    self.shift, out.reshape(-1)):
                return out
        z = self.in_fmt.check_codes(z_q, "z_q")
        index = np.minimum(np.abs(z) >> self.shift, self.size - 1)
        y = entries[index]
        return np.where(z < 0, -y, np.where(z == 0, 0, y)).astype(np.int64)


@functools.cache
def _entries(out_fmt: FixedFormat, index_bits: int, range_log2: int) -> np.ndarray:
    k = np.arange(1 << index_bits, dtype=np.float64)
    x = (k + 0.5) * 2.0 ** (range_log2 - index_bits)
    table = out_fmt.from_float(np.tanh(x), rounding="half_even", overflow="saturate")
    table.setflags(write=False)
    return table


def resolve_table(in_fmt: FixedFormat, out_fmt: FixedFormat,
                  table: TanhTable | None) -> TanhTable:
    """``table``, or the default ``TanhTable(in_fmt, out_fmt)``; checked against the formats.

    Raises
    ------
    TypeError
        If ``table`` is neither ``None`` nor a :class:`TanhTable`.
    ValueError
        If its formats are not ``in_fmt`` and ``out_fmt``.
    """
    if table is None:
        return TanhTable(in_fmt, out_fmt)
    if not isinstance(table, TanhTable):
        raise TypeError(f"table must be a TanhTable, not {table!r}")
    if (table.in_fmt, table.out_fmt) != (in_fmt, out_fmt):
        raise ValueError(f"table formats {table.in_fmt!r} -> {table.out_fmt!r} differ from "
                         f"{in_fmt!r} -> {out_fmt!r}")
    return table


def activate(z_q: npt.ArrayLike, in_fmt: FixedFormat, out_fmt: FixedFormat, kind: str,
             *, rounding: Rounding = "half_even", table: TanhTable | None = None
             ) -> np.ndarray:
    """Activation codes ``act(z)`` (see the module docs for each ``kind``).

    Parameters
    ----------
    z_q : array_like of int
        Codes of ``in_fmt``.
    in_fmt, out_fmt : FixedFormat
    kind : {"identity", "relu", "tanh"}
    rounding : str
        Rounding of identity and ReLU (saturating).
    table : TanhTable, optional
        The table for ``"tanh"``; default ``TanhTable(in_fmt, out_fmt)``. Its formats must be
        ``in_fmt`` and ``out_fmt``.
    """
    kind = check_kind(kind)
    check_rounding(rounding)
    if kind != "tanh":
        out = _shift_activate(z_q, in_fmt, out_fmt, kind == "relu", rounding)
        if out is not None:
            return out
    z = in_fmt.check_codes(z_q, "z_q")
    if kind == "tanh":
        return resolve_table(in_fmt, out_fmt, table).lookup(z)
    if kind == "relu":
        z = np.maximum(z, 0)
    return requantize(z, in_fmt.frac, out_fmt, rounding, "saturate")


def derivative(z_q: npt.ArrayLike, y_q: npt.ArrayLike, in_fmt: FixedFormat,
               y_fmt: FixedFormat, d_fmt: FixedFormat, kind: str,
               *, rounding: Rounding = "half_even") -> np.ndarray:
    """``act'`` as ``d_fmt`` codes, from the pre-activation ``z`` and the activation ``y``.

    identity: 1; relu: 1 where ``z > 0`` else 0; tanh: ``1 - y**2`` computed exactly from the
    ``y_fmt`` codes and requantized (saturating).
    """
    kind = check_kind(kind)
    check_rounding(rounding)
    if kind == "relu" and isinstance(d_fmt, FixedFormat) and isinstance(in_fmt, FixedFormat) \
            and isinstance(y_fmt, FixedFormat):
        one = _one(d_fmt, rounding)
        z_flat = _flat_int64(z_q)
        y_flat = z_flat if y_q is z_q else _flat_int64(y_q)
        if z_flat is not None and y_flat is not None and np.shape(z_q) == np.shape(y_q):
            out = np.empty(np.shape(z_q), dtype=np.int64)
            if kernels.step_where(z_flat, in_fmt.min_int, in_fmt.max_int, y_flat,
                                  y_fmt.min_int, y_fmt.max_int, one, out.reshape(-1)):
                return out
    z = in_fmt.check_codes(z_q, "z_q")
    y = y_fmt.check_codes(y_q, "y_q")
    one = _one(d_fmt, rounding)
    if kind == "identity":
        return np.full(z.shape, one, dtype=np.int64)
    if kind == "relu":
        return np.where(z > 0, np.int64(one), np.int64(0))
    # 1 - y**2 as an exact integer with max(2 frac, 0) fraction bits: y * y scaled by
    # 2**(f2 - 2 frac) (a left shift when frac < 0) must fit an int64
    f2 = max(2 * y_fmt.frac, 0)
    scale = f2 - 2 * y_fmt.frac
    if f2 >= 60 or 2 * y_fmt.width + scale > 60:
        y = y.astype(object)  # Python integers keep it exact
    exact = (1 << f2) - y * y * (1 << scale)
    return requantize(np.asarray(exact), f2, d_fmt, rounding, "saturate")


def _flat_int64(q: object) -> np.ndarray | None:
    """A flat contiguous view (or copy) of an ``int64`` array, else None (the checked path)."""
    if not isinstance(q, np.ndarray) or q.dtype != np.int64:
        return None
    return (q if q.flags.c_contiguous else np.ascontiguousarray(q)).reshape(-1)


def _one(d_fmt: FixedFormat, rounding: str) -> int:
    """The ``d_fmt`` code of 1 (identity's and ReLU's derivative), rounded and saturated;
    anything but a :class:`FixedFormat` gets :func:`requantize`'s error."""
    if not isinstance(d_fmt, FixedFormat):
        return int(requantize(np.int64(1), 0, d_fmt, rounding, "saturate"))  # raises
    return _one_of(d_fmt, rounding)


@functools.lru_cache(maxsize=256)
def _one_of(d_fmt: FixedFormat, rounding: str) -> int:
    return int(requantize(np.int64(1), 0, d_fmt, rounding, "saturate"))


def _shift_activate(z_q: object, in_fmt: FixedFormat, out_fmt: FixedFormat, relu: bool,
                    rounding: str) -> np.ndarray | None:
    """ReLU or identity of ``int64`` codes in one compiled pass (range check included).

    None when the codes are not an ``int64`` array, when the shift between the formats is
    one the kernel does not take, or when a code lies outside ``in_fmt`` (the checked path
    then raises).
    """
    flat = _flat_int64(z_q)
    if flat is None or not isinstance(in_fmt, FixedFormat) \
            or not isinstance(out_fmt, FixedFormat):
        return None
    shift = in_fmt.frac - out_fmt.frac
    left = max(-shift, 0)
    if shift > 62 or max(-in_fmt.min_int, in_fmt.max_int) << left >= 1 << 62:
        return None
    out = np.empty(np.shape(z_q), dtype=np.int64)
    if not kernels.shift_activate(flat, in_fmt.min_int, in_fmt.max_int, relu, max(shift, 0),
                                  left, ROUNDING_MODES.index(rounding), out_fmt.min_int,
                                  out_fmt.max_int, out.reshape(-1)):
        return None
    return out
