"""Adaptive array processing (AAP): a grid of PEs that runs forward, backward and weight-gradient.

FIXAR's compute engine. A ``size x size`` grid of PEs multiplies, in one cycle, one weight tile by
one vector slice: activations are broadcast along PE rows and the products summed down PE columns
into per-column accumulators (forward and backward), or each PE accumulates its own product over
a batch (weight gradient, an outer product per cycle). Closed sums go through an output stage:
requantization, bias, activation (identity, ReLU, table tanh) or the activation derivative.

The three operations use one weight memory layout, the tiles of
:func:`sw_model.arch.aap.tile_weights`
(tile ``(i, j)`` holds ``W[i*S + r, j*S + c]`` at lane ``r*S + c``), and never a transpose:

forward, ``y = act(W x + b)``
    PE ``(r, c)`` takes lane ``c*S + r`` of tile ``(i, j)``: weight row ``i*S + c`` goes down PE
    column ``c``, ``x[j*S + r]`` is broadcast along PE row ``r``; column ``c`` sums output
    ``i*S + c`` over the slice. The reduction runs over ``j``.
backward, ``d_prev = (W^T d) * act'(y_prev)``
    PE ``(r, c)`` takes lane ``r*S + c`` of the same tile: weight row ``i*S + r`` goes along PE
    row ``r``, ``d[i*S + r]`` is broadcast along it; column ``c`` sums ``e[j*S + c]``. The
    reduction runs over ``i``.
weight gradient, ``G = sum_b d_b x_b^T``
    PE ``(r, c)`` accumulates ``d_b[i*S + r] * x_b[j*S + c]`` over the batch; the closed tile
    leaves as one ``S x S`` word in the weight layout.

The array is :class:`fixar_hw.train.array.PEArray`; this module holds what the hardware and the
host share: the command encoding (:class:`AAPCommandSet`), plain Python. Results equal
:func:`sw_model.arch.aap.forward`, :func:`~sw_model.arch.aap.backward` and
:func:`~sw_model.arch.aap.weight_gradient` bit for bit, and cycle counts equal
:class:`sw_model.arch.aap.CycleModel`.
"""

from dataclasses import dataclass

from amaranth.lib import data

from sw_model.arch.aap import OPS, PARALLELISM, AAPConfig
from sw_model.numerics.activation import ACTIVATIONS, TanhTable
from sw_model.numerics.fixed import FixedFormat

__all__ = ["KIND_CODES", "OP_CODES", "AAPCommandSet", "field_bits"]

#: Encoding of the ``op`` field of a command.
OP_CODES = {"forward": 0, "backward": 1, "wgrad": 2}
#: Encoding of the ``kind`` field of a command.
KIND_CODES = {kind: code for code, kind in enumerate(ACTIVATIONS)}


def field_bits(n: int) -> int:
    """Bits of an unsigned field that holds ``0 .. n`` (at least 1)."""
    return max(n.bit_length(), 1)


@dataclass(frozen=True)
class AAPCommandSet:
    """The command encoding of an AAP array (:class:`~fixar_hw.train.array.PEArray`) for one
    :class:`~sw_model.arch.aap.AAPConfig`: plain Python, shared by the hardware and the host (a
    program's descriptors are encoded without building an array).

    Parameters
    ----------
    config : AAPConfig

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.aap.AAPConfig`.
    """

    config: AAPConfig

    def __post_init__(self) -> None:
        if not isinstance(self.config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {self.config!r}")

    @property
    def layout(self) -> data.StructLayout:
        """Layout of a command: dimensions are stored minus one, so none can be 0."""
        c = self.config
        return data.StructLayout({
            "op": 2,
            "kind": 2,
            "layer": 1,
            "m_minus_1": field_bits(c.max_m - 1),
            "n_minus_1": field_bits(c.max_n - 1),
            "batch_minus_1": field_bits(c.max_batch - 1),
            "w_base": c.addr_width,
            "v_base": c.addr_width,
            "u_base": c.addr_width,
            "b_base": c.addr_width,
            "x_frac": field_bits(c.a_fmt.frac),
            "o_frac": field_bits(c.a_fmt.frac),
            "o_narrow": 1,
            "t_shift": field_bits(self.max_t_shift),
            "half": 1,
        })

    @property
    def max_t_shift(self) -> int:
        """The largest table shift a command holds: ``|z| >> shift`` indexes the table, and
        beyond ``a_fmt.width`` bits every index clamps."""
        return self.config.a_fmt.width

    def command(self, op: str, *, m: int, n: int, batch: int, kind: str = "identity",
                parallelism: str = "batch", w_base: int = 0, v_base: int = 0,
                u_base: int = 0, b_base: int = 0, x_fmt: FixedFormat | None = None,
                out_fmt: FixedFormat | None = None, table: TanhTable | None = None,
                half: bool = False) -> dict:
        """The command payload (a dict for :attr:`layout`) of one operation on an ``m x n``
        weight matrix.

        ``x_fmt`` is the format of the activation operand (forward ``x``, backward
        ``y_prev``, weight-gradient ``x``) and ``out_fmt`` that of a forward output, each a
        run-time format of the build (default ``a_fmt``); ``table`` is the tanh table of a
        forward tanh layer (default :meth:`~sw_model.arch.aap.AAPConfig.table_for` the output
        format, or the initial table when ``out_fmt`` is omitted). ``half`` runs the operation
        in half mode (two products a PE per cycle, the same results): a forward or weight
        gradient on narrow activations of a half-mode build
        (:meth:`~sw_model.arch.aap.AAPConfig.half_for`).

        Raises
        ------
        TypeError
            For a dimension or base address that is no integer.
        ValueError
            For an unknown ``op``/``kind``/``parallelism``, a dimension outside
            ``1..config.max_*``, a base address that does not fit ``addr_width``, or a format
            or table the build cannot take, or ``half`` for an operation that cannot run in half
            mode (a 32-bit-activation op, backward, or a build without half mode).
        """
        c = self.config
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}, not {op!r}")
        if kind not in ACTIVATIONS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                             f"not {kind!r}")
        if parallelism not in PARALLELISM:
            raise ValueError(f"parallelism must be 'batch' or 'layer', not {parallelism!r}")
        for name, value, hi in (("m", m, c.max_m), ("n", n, c.max_n),
                                ("batch", batch, c.max_batch)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 1 <= value <= hi:
                raise ValueError(f"{name} must be from 1 to {hi}, not {value!r}")
        bases = {"w_base": w_base, "v_base": v_base, "u_base": u_base, "b_base": b_base}
        for name, value in bases.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 0 <= value < 1 << c.addr_width:
                raise ValueError(f"{name} must be from 0 to {(1 << c.addr_width) - 1}, "
                                 f"not {value!r}")
        x_frac, _ = c.act_fields(x_fmt)
        o_frac, o_narrow = c.act_fields(out_fmt)
        if table is None:
            table = c.table if out_fmt is None else c.table_for(out_fmt)
        c.table_image(table)  # raises for a table the memory cannot hold
        out = out_fmt or c.a_fmt
        if table.out_fmt != out:
            raise ValueError(f"table format {table.out_fmt!r} differs from the output format "
                             f"{out!r}")
        if not isinstance(half, bool):
            raise TypeError(f"half must be a bool, not {half!r}")
        if half:
            c.check_half(op, x_fmt)
        return {"op": OP_CODES[op], "kind": KIND_CODES[kind],
                "layer": int(parallelism == "layer"), "m_minus_1": m - 1,
                "n_minus_1": n - 1, "batch_minus_1": batch - 1, **bases,
                "x_frac": x_frac, "o_frac": o_frac, "o_narrow": int(o_narrow),
                "t_shift": min(table.shift, self.max_t_shift), "half": int(half)}

    def cycles(self, op: str, m: int, n: int, batch: int, parallelism: str = "batch",
               half: bool = False) -> int:
        """Cycles from the command transfer to the last result transfer (outputs always
        accepted): :meth:`sw_model.arch.aap.CycleModel.cycles`."""
        return self.config.cycle_model.cycles(op, m, n, batch, parallelism, half)
