"""Golden model of the adaptive-array-processing (AAP) layer operations and their cycle counts.

The three matrix products of training, on integer codes, with one rounding each:

``forward``
    ``z = requantize(x W^T + b, w.frac + x.frac -> out_fmt)`` (saturating), ``y = act(z)``
    with :func:`sw_model.numerics.activation.activate` (``out_fmt -> out_fmt``). The bias is in the
    weight format and enters the exact sum shifted left by ``x.frac`` bits (exact).
``backward``
    ``e = requantize(d W, w.frac + d.frac -> out_fmt)``, ``g = act'(y_prev)`` as ``g_fmt``
    codes (:func:`sw_model.numerics.activation.derivative`, from the stored activation: ReLU's
    derivative is ``y > 0``, which equals ``z > 0`` because ReLU is exact on a code), and
    ``d_prev = requantize(e * g, out_fmt.frac + g_fmt.frac -> out_fmt)``.
``weight_gradient``
    ``G = requantize(sum_b d_b x_b^T, d.frac + x.frac -> out_fmt)``: the batch sum is exact and
    rounded once.

The hardware (:class:`fixar_hw.train.array.PEArray`) computes
these
bit for bit; the fixed-point trainer calls the same functions.

Layout. A layer's weight matrix ``W`` (``M x N``, row-wise: row ``m`` holds the weights of
output ``m``) is cut into ``S x S`` tiles, ``S`` the grid size; tile ``(i, j)`` holds
``W[i*S + r, j*S + c]`` at lane ``r*S + c`` (zero beyond the matrix) and sits at address
``i * ceil(N/S) + j``. Vectors are cut into slices of ``S`` lanes; slice ``j`` of vector ``b``
sits at ``b * ceil(len/S) + j``. :func:`tile_weights` and :func:`slice_vectors` build these
layouts; forward and backward read the *same* tiles (forward sends a weight row to a PE column,
backward to a PE row), so ``W^T`` is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int
from sw_model.numerics.activation import TanhTable, activate, check_kind, derivative
from sw_model.numerics.fixed import (
    FixedFormat,
    Rounding,
    _checked,
    _matmul_checked,
    check_rounding,
    requantize,
)

__all__ = [
    "OPS",
    "PARALLELISM",
    "AAPConfig",
    "CycleModel",
    "backward",
    "bias_gradient",
    "choose_parallelism",
    "forward",
    "slice_vectors",
    "tile_weights",
    "unslice_vectors",
    "untile_weights",
    "weight_gradient",
]

OPS: tuple[str, ...] = ("forward", "backward", "wgrad")
PARALLELISM: tuple[str, ...] = ("batch", "layer")


def _matrix(q: npt.ArrayLike, fmt: FixedFormat, name: str) -> tuple[np.ndarray, int]:
    """Checked codes of a 2-D operand and their largest magnitude (one pass over the codes)."""
    a, a_max = _checked(q, fmt, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, not of shape {a.shape}")
    return a, a_max


def _inner(a_name: str, n_a: int, b_name: str, n_b: int) -> None:
    if n_a != n_b:
        raise ValueError(f"{a_name} ({n_a}) and {b_name} ({n_b}) must be equal")


def forward(w_q: npt.ArrayLike, b_q: npt.ArrayLike, x_q: npt.ArrayLike, *,
            w_fmt: FixedFormat, x_fmt: FixedFormat, out_fmt: FixedFormat, kind: str,
            rounding: Rounding = "half_even", table: TanhTable | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Forward pass of a layer on a batch: ``(z, y)``, each ``(batch, M)`` codes of ``out_fmt``.

    Parameters
    ----------
    w_q : array_like of int, shape (M, N)
        Weights (``w_fmt`` codes).
    b_q : array_like of int, shape (M,)
        Biases (``w_fmt`` codes).
    x_q : array_like of int, shape (batch, N)
        Input vectors (``x_fmt`` codes, ``x_fmt.frac >= 0``).
    kind : {"identity", "relu", "tanh"}
    rounding : str
        Rounding of the requantization (always saturating).
    table : TanhTable, optional
        For ``"tanh"``; default ``TanhTable(out_fmt, out_fmt)``.
    """
    check_kind(kind)
    check_rounding(rounding)
    w, w_max = _matrix(w_q, w_fmt, "w_q")
    x, x_max = _matrix(x_q, x_fmt, "x_q")
    _inner("the length of x_q rows", x.shape[1], "of w_q rows", w.shape[1])
    b = w_fmt.check_codes(b_q, "b_q")
    if b.shape != (w.shape[0],):
        raise ValueError(f"b_q must have shape ({w.shape[0]},), not {b.shape}")
    if x_fmt.frac < 0:
        raise ValueError(f"x_fmt.frac must be >= 0 to align the bias, not {x_fmt.frac!r}")
    z = _matmul_checked(x, w.T, x_max, w_max, x_fmt.frac + w_fmt.frac, out_fmt, rounding,
                        "saturate", b, w_fmt.frac)
    return z, activate(z, out_fmt, out_fmt, kind, rounding=rounding, table=table)


def backward(w_q: npt.ArrayLike, d_q: npt.ArrayLike, y_prev_q: npt.ArrayLike, *,
             w_fmt: FixedFormat, d_fmt: FixedFormat, y_fmt: FixedFormat, g_fmt: FixedFormat,
             out_fmt: FixedFormat, kind: str, rounding: Rounding = "half_even") -> np.ndarray:
    """Backward pass through a layer: ``d_prev = (d W) * act'(y_prev)``, ``(batch, N)`` codes.

    Parameters
    ----------
    w_q : array_like of int, shape (M, N)
        The layer's weights, in the same row-wise layout as :func:`forward`.
    d_q : array_like of int, shape (batch, M)
        Deltas at the layer's output (``d_fmt``).
    y_prev_q : array_like of int, shape (batch, N)
        The activations that fed the layer (``y_fmt``), whose activation ``kind`` is
        differentiated.
    g_fmt : FixedFormat
        Format of the derivative codes (holds 1 for identity/ReLU to be exact).
    out_fmt : FixedFormat
        Format of ``e`` and of the result.
    """
    check_kind(kind)
    check_rounding(rounding)
    w, w_max = _matrix(w_q, w_fmt, "w_q")
    d, d_max = _matrix(d_q, d_fmt, "d_q")
    _inner("the length of d_q rows", d.shape[1], "of w_q columns", w.shape[0])
    y, _ = _matrix(y_prev_q, y_fmt, "y_prev_q")
    if y.shape != (d.shape[0], w.shape[1]):
        raise ValueError(f"y_prev_q must have shape {(d.shape[0], w.shape[1])}, not {y.shape}")
    e = _matmul_checked(d, w, d_max, w_max, d_fmt.frac + w_fmt.frac, out_fmt, rounding,
                        "saturate")
    g = derivative(y, y, y_fmt, y_fmt, g_fmt, kind, rounding=rounding)
    return requantize(e * g, out_fmt.frac + g_fmt.frac, out_fmt, rounding, "saturate")


def weight_gradient(d_q: npt.ArrayLike, x_q: npt.ArrayLike, *, d_fmt: FixedFormat,
                    x_fmt: FixedFormat, out_fmt: FixedFormat,
                    rounding: Rounding = "half_even") -> np.ndarray:
    """Weight gradient summed over a batch: ``G = sum_b d_b x_b^T``, ``(M, N)`` codes.

    Parameters
    ----------
    d_q : array_like of int, shape (batch, M)
        Deltas at the layer's output.
    x_q : array_like of int, shape (batch, N)
        The layer's inputs.
    """
    check_rounding(rounding)
    d, d_max = _matrix(d_q, d_fmt, "d_q")
    x, x_max = _matrix(x_q, x_fmt, "x_q")
    if d.shape[0] != x.shape[0]:
        raise ValueError(f"d_q and x_q must have the same batch, not {d.shape[0]} and "
                         f"{x.shape[0]}")
    return _matmul_checked(d.T, x, d_max, x_max, d_fmt.frac + x_fmt.frac, out_fmt, rounding,
                           "saturate")


def bias_gradient(d_q: npt.ArrayLike, *, d_fmt: FixedFormat, out_fmt: FixedFormat,
                  rounding: Rounding = "half_even") -> np.ndarray:
    """Bias gradient summed over a batch: ``requantize(sum_b d_b)``, shape ``(M,)``."""
    check_rounding(rounding)
    d, _ = _matrix(d_q, d_fmt, "d_q")
    total = d.astype(object).sum(axis=0) if d.shape[0] > 1 << 20 else d.sum(axis=0)
    return requantize(np.asarray(total), d_fmt.frac, out_fmt, rounding, "saturate")


# --- configuration -------------------------------------------------------------------------

_Q32_24 = FixedFormat(32, 24)
_Q18_16 = FixedFormat(18, 16)


@dataclass(frozen=True)
class AAPConfig:
    """One build of the AAP array: grid, cores, formats and limits (hardware and golden model).

    Parameters
    ----------
    size : int
        PEs per grid side (a power of two; FIXAR: 16).
    cores : int
        AAP cores (FIXAR: 2 to 4).
    w_fmt, a_fmt, d_fmt, g_fmt, grad_fmt : FixedFormat
        Weights and biases; activations; deltas; activation derivatives; weight gradients.
        All signed. ``a_fmt.frac >= 0`` (the bias is aligned by a left shift).
    rounding : str
        Rounding of every requantization (all saturate).
    max_m, max_n : int
        Largest layer (``max_m`` outputs, ``max_n`` inputs): sizes counters and accumulators.
    max_batch : int
        Largest batch.
    addr_width : int
        Width of every memory address.
    tanh_index_bits : int
        log2 of the tanh table memory's entries (its initial contents are ``TanhTable(a_fmt,
        a_fmt, tanh_index_bits)``).
    narrow_width : int or None
        Run-time activation formats: besides ``a_fmt`` itself, each operation may take its
        activations in any :meth:`act_format` ``(frac, narrow)``: ``frac`` from 0 to
        ``a_fmt.frac`` and width ``a_fmt.width``, or ``narrow_width`` when ``narrow`` (codes
        sign-extended in the same lanes). None allows only the ``a_fmt`` width.
    half : bool
        Build the PEs from :class:`~fixar_hw.arith.pe.DualPrecisionPE` (FIXAR's adaptive
        precision): an operation whose activation operand is narrow (``narrow_width`` bits, at
        most half the PE's activation operand, :attr:`pe_half_width`) may run in half mode,
        two products a PE per cycle (:meth:`half_for`). A build whose formats cannot use half
        mode runs full mode (:attr:`half_mode` is False; :attr:`half_note` says why).

    Half mode
    ---------
    A half-mode PE multiplies the low halves of two activation lanes by two weights and adds
    the products (:class:`~fixar_hw.arith.pe.DualPrecisionPE`). Forward takes two reduction
    tiles a pass (tile ``j`` and ``j + 1`` of the weight row, slices ``j`` and ``j + 1`` of
    the vector), in both parallelisms; the weight gradient takes two batch vectors a pass
    (``d_b x_b^T + d_(b+1) x_(b+1)^T`` into the PEs' accumulators). Backward multiplies a
    weight by a delta, with no narrow operand, and runs full mode. The sums are exact, so the
    results are those of full mode bit for bit; only the passes change
    (:meth:`CycleModel.passes`). The PEs of a half-mode build have one pipeline stage more
    (the two products are registered before they are added), in every mode.

    Run-time formats
    ----------------
    The hardware takes the activation formats of every operation from its command: the
    forward input ``x`` and output, the backward ``y_prev`` and the weight-gradient ``x``
    (deltas, weights, derivatives and gradients keep their build-time formats). The
    :meth:`forward`, :meth:`backward` and :meth:`weight_gradient` methods take the same
    optional formats; omitted, they are ``a_fmt``. A tanh layer uses a table whose input and
    output format is the layer's output format (default :meth:`table_for`); the hardware's
    table memory must hold its :meth:`table_image`.
    """

    size: int = 16
    cores: int = 1
    w_fmt: FixedFormat = _Q32_24
    a_fmt: FixedFormat = _Q32_24
    d_fmt: FixedFormat = _Q32_24
    g_fmt: FixedFormat = _Q18_16
    grad_fmt: FixedFormat = _Q32_24
    rounding: str = "half_even"
    max_m: int = 512
    max_n: int = 512
    max_batch: int = 512
    addr_width: int = 16
    tanh_index_bits: int = 10
    narrow_width: int | None = None
    half: bool = False

    def __post_init__(self) -> None:
        size = check_int(self.size, "size", minimum=1)
        if size & (size - 1):
            raise ValueError(f"size must be a power of two, not {size!r}")
        check_int(self.cores, "cores", minimum=1)
        for name in ("w_fmt", "a_fmt", "d_fmt", "g_fmt", "grad_fmt"):
            fmt = getattr(self, name)
            if not isinstance(fmt, FixedFormat):
                raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
            if not fmt.signed:
                raise ValueError(f"{name} must be signed, not {fmt!r}")
        if self.a_fmt.frac < 0:
            raise ValueError(f"a_fmt.frac must be >= 0, not {self.a_fmt.frac!r}")
        check_rounding(self.rounding)
        for name in ("max_m", "max_n", "max_batch"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.addr_width, "addr_width", minimum=1)
        check_int(self.tanh_index_bits, "tanh_index_bits", minimum=1)
        TanhTable(self.a_fmt, self.a_fmt, self.tanh_index_bits)  # raises for a bad pairing
        if self.narrow_width is not None:
            nw = check_int(self.narrow_width, "narrow_width", minimum=2)
            if nw > self.a_fmt.width:
                raise ValueError(f"narrow_width must be at most a_fmt.width = "
                                 f"{self.a_fmt.width}, not {nw!r}")
        if not isinstance(self.half, bool):
            raise TypeError(f"half must be a bool, not {self.half!r}")

    @property
    def pe_half_width(self) -> int:
        """Width of one half of a PE's activation operand: the operand holds a vector lane
        (``max(a_fmt.width, d_fmt.width)`` bits, rounded up to even) and splits in two."""
        right = max(self.a_fmt.width, self.d_fmt.width)
        return (right + 1) // 2

    @property
    def half_mode(self) -> bool:
        """Whether operations may run in half mode: :attr:`half` and narrow activations that
        fit half a PE operand (``narrow_width <= pe_half_width``)."""
        return (self.half and self.narrow_width is not None
                and self.narrow_width <= self.pe_half_width)

    @property
    def half_note(self) -> str:
        """One line on the PEs' precision modes (for summaries)."""
        if not self.half:
            return "full precision (one product a PE per cycle)"
        if self.half_mode:
            return (f"dual precision: forward and weight-gradient operations on "
                    f"{self.narrow_width}-bit activations run two products a PE per cycle")
        if self.narrow_width is None:
            return "half mode asked for, but the build has no narrow activations: full mode"
        return (f"half mode asked for, but the {self.narrow_width}-bit narrow activations are "
                f"wider than half the PE's operand ({self.pe_half_width} bits): full mode")

    def half_for(self, op: str, x_fmt: FixedFormat | None) -> bool:
        """Whether ``op`` with activation operand format ``x_fmt`` runs in half mode on this
        build: a half-mode build, a forward or weight gradient, a narrow ``x_fmt``."""
        _check_op(op)
        self.act_fields(x_fmt)
        return (self.half_mode and op != "backward" and x_fmt is not None
                and x_fmt.width == self.narrow_width)

    def check_half(self, op: str, x_fmt: FixedFormat | None) -> None:
        """Raise ``ValueError`` unless ``op`` on ``x_fmt`` activations can run in half mode
        (:meth:`half_for`), naming why."""
        if self.half_for(op, x_fmt):
            return
        if not self.half_mode:
            raise ValueError(f"half=True needs a half-mode build; this one runs "
                             f"{self.half_note}")
        if op == "backward":
            raise ValueError("half=True: backward has no narrow operand and runs full mode")
        fmt = x_fmt or self.a_fmt
        raise ValueError(f"half=True needs {self.narrow_width}-bit activations, not x_fmt "
                         f"{fmt!r}")

    def act_format(self, frac: int, narrow: bool = False) -> FixedFormat:
        """The run-time activation format ``(frac, narrow)`` of this build.

        Raises
        ------
        ValueError
            If ``frac`` is outside ``0..a_fmt.frac`` or ``narrow`` without ``narrow_width``.
        """
        if isinstance(frac, bool) or not isinstance(frac, int | np.integer):
            raise TypeError(f"frac must be an integer, not {frac!r}")
        if not 0 <= frac <= self.a_fmt.frac:
            raise ValueError(f"frac must be from 0 to a_fmt.frac = {self.a_fmt.frac}, "
                             f"not {frac!r}")
        if narrow and self.narrow_width is None:
            raise ValueError("narrow activation formats need narrow_width")
        return FixedFormat(self.narrow_width if narrow else self.a_fmt.width, int(frac))

    def act_fields(self, fmt: FixedFormat | None) -> tuple[int, bool]:
        """``(frac, narrow)`` of a run-time activation format (``a_fmt`` for None).

        Raises
        ------
        TypeError
            If ``fmt`` is not a FixedFormat.
        ValueError
            If it is not one of this build's run-time formats.
        """
        if fmt is None:
            return self.a_fmt.frac, False
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"activation format must be a FixedFormat, not {fmt!r}")
        widths = {self.a_fmt.width: False}
        if self.narrow_width is not None:
            widths[self.narrow_width] = True
        if (not fmt.signed or fmt.width not in widths
                or not 0 <= fmt.frac <= self.a_fmt.frac):
            raise ValueError(f"activation format {fmt!r} is not a run-time format of this build "
                             f"(signed, width in {sorted(widths)}, frac 0..{self.a_fmt.frac})")
        return fmt.frac, widths[fmt.width]

    def table_for(self, fmt: FixedFormat) -> TanhTable:
        """The default tanh table of an output format: ``TanhTable(fmt, fmt,
        min(tanh_index_bits, fmt.frac + 2))`` (the trainer's rule)."""
        self.act_fields(fmt)
        return TanhTable(fmt, fmt, min(self.tanh_index_bits, fmt.frac + 2))

    def table_image(self, table: TanhTable) -> np.ndarray:
        """Contents of the hardware's tanh table memory for ``table``: its entries, padded to
        ``2**tanh_index_bits`` with the last one (so that clamping the index at the memory's
        end equals clamping it at the table's).

        Raises
        ------
        ValueError
            If the table has more entries than the memory or formats that differ.
        """
        if not isinstance(table, TanhTable):
            raise TypeError(f"table must be a TanhTable, not {table!r}")
        self.act_fields(table.out_fmt)
        if table.in_fmt != table.out_fmt:
            raise ValueError(f"table must map a format to itself, not {table.in_fmt!r} -> "
                             f"{table.out_fmt!r}")
        if table.index_bits > self.tanh_index_bits:
            raise ValueError(f"table has 2**{table.index_bits} entries, more than the memory's "
                             f"2**{self.tanh_index_bits}")
        entries = table.entries()
        pad = (1 << self.tanh_index_bits) - entries.size
        return np.concatenate([entries, np.full(pad, entries[-1], dtype=np.int64)])

    @property
    def table(self) -> TanhTable:
        """The tanh table of the activation stage."""
        return TanhTable(self.a_fmt, self.a_fmt, self.tanh_index_bits)

    @property
    def cycle_model(self) -> CycleModel:
        """The :class:`CycleModel` of this build."""
        return CycleModel(self.size, self.cores, self.half_mode)

    def forward(self, w_q: npt.ArrayLike, b_q: npt.ArrayLike, x_q: npt.ArrayLike,
                kind: str, *, x_fmt: FixedFormat | None = None,
                out_fmt: FixedFormat | None = None, table: TanhTable | None = None
                ) -> np.ndarray:
        """:func:`forward`'s ``y`` with this build's formats (activations in and out, each
        ``a_fmt`` or the given run-time format; tanh with ``table``, default
        :meth:`table_for` of the output format, or :attr:`table` for ``a_fmt``)."""
        self.act_fields(x_fmt)
        self.act_fields(out_fmt)
        out = out_fmt or self.a_fmt
        if table is None:
            table = self.table if out_fmt is None else self.table_for(out)
        return forward(w_q, b_q, x_q, w_fmt=self.w_fmt, x_fmt=x_fmt or self.a_fmt,
                       out_fmt=out, kind=kind, rounding=self.rounding, table=table)[1]

    def backward(self, w_q: npt.ArrayLike, d_q: npt.ArrayLike, y_prev_q: npt.ArrayLike,
                 kind: str, *, y_fmt: FixedFormat | None = None) -> np.ndarray:
        """:func:`backward` with this build's formats (deltas in and out; ``y_prev`` in
        ``a_fmt`` or the given run-time format)."""
        self.act_fields(y_fmt)
        return backward(w_q, d_q, y_prev_q, w_fmt=self.w_fmt, d_fmt=self.d_fmt,
                        y_fmt=y_fmt or self.a_fmt, g_fmt=self.g_fmt, out_fmt=self.d_fmt,
                        kind=kind, rounding=self.rounding)

    def weight_gradient(self, d_q: npt.ArrayLike, x_q: npt.ArrayLike, *,
                        x_fmt: FixedFormat | None = None) -> np.ndarray:
        """:func:`weight_gradient` with this build's formats (``x`` in ``a_fmt`` or the given
        run-time format)."""
        self.act_fields(x_fmt)
        return weight_gradient(d_q, x_q, d_fmt=self.d_fmt, x_fmt=x_fmt or self.a_fmt,
                               out_fmt=self.grad_fmt, rounding=self.rounding)


# --- layouts ---------------------------------------------------------------------------------

def _check_size(size: object) -> int:
    return check_int(size, "size", minimum=1)


def tile_weights(w_q: npt.ArrayLike, size: int) -> np.ndarray:
    """``(tiles, size*size)`` words of the tile layout (see the module docs) of ``w_q``."""
    size = _check_size(size)
    w = np.asarray(w_q)
    if w.ndim != 2:
        raise ValueError(f"w_q must be 2-D, not of shape {w.shape}")
    ti, tj = -(-w.shape[0] // size), -(-w.shape[1] // size)
    padded = np.zeros((ti * size, tj * size), dtype=w.dtype)
    padded[:w.shape[0], :w.shape[1]] = w
    return padded.reshape(ti, size, tj, size).transpose(0, 2, 1, 3).reshape(ti * tj, -1)


def untile_weights(words: npt.ArrayLike, shape: tuple[int, int], size: int) -> np.ndarray:
    """Inverse of :func:`tile_weights`: the ``shape`` matrix held in ``words``."""
    size = _check_size(size)
    m, n = shape
    ti, tj = -(-m // size), -(-n // size)
    t = np.asarray(words).reshape(ti, tj, size, size).transpose(0, 2, 1, 3)
    return t.reshape(ti * size, tj * size)[:m, :n]


def slice_vectors(v_q: npt.ArrayLike, size: int) -> np.ndarray:
    """``(batch * slices, size)`` words of the slice layout of a ``(batch, n)`` array."""
    size = _check_size(size)
    v = np.asarray(v_q)
    if v.ndim != 2:
        raise ValueError(f"v_q must be 2-D, not of shape {v.shape}")
    t = -(-v.shape[1] // size)
    padded = np.zeros((v.shape[0], t * size), dtype=v.dtype)
    padded[:, :v.shape[1]] = v
    return padded.reshape(-1, size)


def unslice_vectors(words: npt.ArrayLike, batch: int, n: int, size: int) -> np.ndarray:
    """Inverse of :func:`slice_vectors`."""
    size = _check_size(size)
    return np.asarray(words).reshape(batch, -1)[:, :n]


# --- cycle model ---------------------------------------------------------------------------

def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class CycleModel:
    """Cycles of one layer operation on ``cores`` AAP cores of ``size x size`` PEs.

    Each core runs one tile pass per cycle: ``size**2`` multiply-accumulates. With every
    output always accepted, an operation takes ``passes + fill`` cycles from the command
    transfer to the last output transfer, ``fill`` the pipeline depth of the op
    (:meth:`fill`). The passes:

    forward / backward (``out`` output tiles, ``red`` reduction tiles, batch ``B``)
        ``"batch"``: each core takes every ``cores``-th vector:
        ``ceil(B / cores) * out * red``.
        ``"layer"``: the cores split the reduction tiles of each output (then their partial
        sums are added across cores): ``B * out * ceil(red / cores)``.
    wgrad (``T = ceil(M/S) * ceil(N/S)`` gradient tiles)
        The cores take consecutive tiles in row-major order, each summing the whole batch in
        its PEs' accumulators: ``ceil(T / cores) * B`` in both modes. (Splitting the batch
        instead takes as many passes when ``cores`` divides ``B``, and would need a cross-core
        sum of ``size**2`` lanes per tile.)

    Forward: ``out = ceil(M/S)``, ``red = ceil(N/S)``; backward: ``out = ceil(N/S)``,
    ``red = ceil(M/S)``.

    Half mode (``half`` ops of a build with ``dual`` PEs, see :class:`AAPConfig`): forward
    takes the reduction tiles two a pass, ``red`` becomes ``ceil(red / 2)`` in both
    parallelisms; the weight gradient takes the batch two vectors a pass,
    ``ceil(T / cores) * ceil(B / 2)``. Dual PEs add a stage to every operation's fill.
    """

    size: int
    cores: int = 1
    dual: bool = False


    def __post_init__(self) -> None:
        _check_size(self.size)
        check_int(self.cores, "cores", minimum=1)
        if not isinstance(self.dual, bool):
            raise TypeError(f"dual must be a bool, not {self.dual!r}")

    def fill(self, op: str) -> int:
        """Pipeline depth of ``op``: cycles from the command transfer to the first result.

        The hardware's stages, each at most one adder, multiplier or barrel shifter deep: the
        memory read, the multipliers' input and output registers, then

        * weight gradient: the PE accumulators and a requantizer in three stages (align,
          round, saturate): 7 in all;
        * forward and backward: the column adder trees (a register every two adder levels,
          ``ceil(ceil(log2 size) / 2)`` stages), the cross-core sum (likewise over ``cores``),
          the accumulators, the bias add, three requantizer stages, the table index, the
          table read, its register and the activation: ``12`` plus the two trees.

        Dual PEs register their two products before adding them: one more.
        """
        _check_op(op)
        extra = int(self.dual)
        if op == "wgrad":
            return 7 + extra
        return 12 + extra + _tree_stages(self.size) + _tree_stages(self.cores)

    def tiles(self, op: str, m: int, n: int) -> tuple[int, int]:
        """``(output tiles, reduction tiles)`` of ``op`` on an ``m x n`` weight matrix."""
        _check_op(op)
        ti, tj = _ceil(m, self.size), _ceil(n, self.size)
        return {"forward": (ti, tj), "backward": (tj, ti), "wgrad": (ti * tj, 1)}[op]

    def passes(self, op: str, m: int, n: int, batch: int, parallelism: str,
               half: bool = False) -> int:
        """Tile passes per core (see the class docs); ``half`` for a half-mode operation."""
        _check_parallelism(parallelism)
        self._check_half(op, half)
        out, red = self.tiles(op, m, n)
        if op == "wgrad":
            return _ceil(out, self.cores) * (_ceil(batch, 2) if half else batch)
        if half:
            red = _ceil(red, 2)
        if parallelism == "batch":
            return _ceil(batch, self.cores) * out * red
        return batch * out * _ceil(red, self.cores)

    def _check_half(self, op: str, half: object) -> None:
        if not isinstance(half, bool):
            raise TypeError(f"half must be a bool, not {half!r}")
        if half and not self.dual:
            raise ValueError("half=True needs dual PEs (CycleModel dual=True)")
        if half and op == "backward":
            raise ValueError("half=True: backward runs full mode")

    def cycles(self, op: str, m: int, n: int, batch: int, parallelism: str = "batch",
               half: bool = False) -> int:
        """Cycles from the command transfer to the last output transfer, never stalled."""
        return self.passes(op, m, n, batch, parallelism, half) + self.fill(op)

    def utilisation(self, op: str, m: int, n: int, batch: int,
                    parallelism: str = "batch", half: bool = False) -> float:
        """Useful MACs (``batch * m * n``) over the MAC slots, ``cores * size**2 * cycles``
        (twice that in half mode: a half-mode PE has two slots)."""
        cycles = self.cycles(op, m, n, batch, parallelism, half)
        return batch * m * n / ((1 + half) * self.cores * self.size**2 * cycles)


def _tree_stages(terms: int) -> int:
    """Register stages of an adder tree over ``terms`` operands, registered after every two
    adder levels: ``ceil(ceil(log2 terms) / 2)``."""
    return -(-(terms - 1).bit_length() // 2)


def choose_parallelism(model: CycleModel, op: str, m: int, n: int, batch: int,
                       half: bool = False) -> str:
    """The faster mode for ``op`` on this shape (``"batch"`` on a tie).

    The rule, from :class:`CycleModel`: splitting the batch balances perfectly when ``cores``
    divides the batch and wastes ``cores - B % cores`` core-slots otherwise; splitting the
    reduction wastes ``cores - red % cores`` slots of every output tile. So ``"layer"`` wins
    for small batches (a single-state inference) and wide layers, ``"batch"`` for training
    batches.
    """
    batch_cycles = model.cycles(op, m, n, batch, "batch", half)
    layer_cycles = model.cycles(op, m, n, batch, "layer", half)
    return "layer" if layer_cycles < batch_cycles else "batch"


def _check_op(op: object) -> str:
    if op not in OPS:
        raise ValueError(f"op must be one of 'forward', 'backward', 'wgrad', not {op!r}")
    return op  # type: ignore[return-value]


def _check_parallelism(p: object) -> str:
    if p not in PARALLELISM:
        raise ValueError(f"parallelism must be 'batch' or 'layer', not {p!r}")
    return p  # type: ignore[return-value]


def useful_macs(m: int, n: int, batch: int) -> int:
    """Multiply-accumulates an op needs: ``batch * m * n`` (same for all three ops)."""
    return batch * m * n

